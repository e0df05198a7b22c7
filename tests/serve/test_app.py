"""A real server on 127.0.0.1: every endpoint's payload round-trips and equals the offline Scorer's scores."""

from __future__ import annotations

import asyncio
import math

import httpx
import numpy as np
import pytest

from themis_rm.pairs import ScoreRequest
from themis_rm.render import build_messages

TOLERANCE = 1e-4  # batches differ in composition and padding between server and offline runs
PROMPTS = [f"Write function number {i} that sums a list of integers." for i in range(8)]
RESPONSES = [
    "def total(xs):\n" + "    # accumulate\n" * (k % 6) + f"    return sum(xs) + {k}" if k % 3 else f"return {k}"
    for k in range(40)
]
POOL = [(PROMPTS[k % len(PROMPTS)], RESPONSES[k]) for k in range(40)]


def client(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, trust_env=False)


def rendered(scorer, prompt, response, system=None) -> str:
    """The conversation as the reward model's own template writes it (what verl and OpenRLHF users send)."""
    return scorer.renderer.apply_template(build_messages(prompt, response, system))


def offline(scorer, pairs, criteria=None) -> np.ndarray:
    system = scorer.system_prompt(criteria)
    return scorer.score_requests([ScoreRequest(p, r, system) for p, r in pairs]).rewards


@pytest.fixture(scope="module")
def expected(offline_scorer) -> dict[str, np.ndarray]:
    return {
        "none": offline(offline_scorer, POOL),
        "Security_Hardness": offline(offline_scorer, POOL, "security"),
    }


def test_64_concurrent_clients_get_their_own_offline_scores(start_server, offline_scorer, expected):
    server = start_server()  # default: continuous batching, no wait
    texts = [rendered(offline_scorer, p, r) for p, r in POOL]
    clients, per_client = 64, 20

    async def one_client(c: int) -> list[tuple[float, float]]:
        pairs = []
        async with httpx.AsyncClient(base_url=server.url, timeout=60, trust_env=False) as http:
            for k in range(per_client):
                i, j = (c * per_client + k) % len(POOL), (c * 7 + k * 3) % len(POOL)
                if (c + k) % 3 == 0:
                    body = {"items": [{"prompt": POOL[i][0], "response": POOL[i][1]}, {"prompt": POOL[j][0],
                            "response": POOL[j][1]}], "criteria": ["none", "security"]}  # fmt: skip
                    answer = (await http.post("/v1/rewards", json=body)).raise_for_status().json()
                    for index, result in zip((i, j), answer["results"], strict=True):
                        pairs += [(result["scores"][label], expected[label][index]) for label in expected]
                elif (c + k) % 3 == 1:
                    answer = (await http.post("/get_reward", json={"query": [texts[i], texts[j]]})).raise_for_status()
                    pairs += list(zip(answer.json()["rewards"], expected["none"][[i, j]], strict=True))
                else:
                    answer = (
                        await http.post("/classify", json={"model": "m", "input": texts[i], "use_activation": False})
                    ).raise_for_status()
                    pairs.append((answer.json()["data"][0]["probs"][0], expected["none"][i]))
        return pairs

    async def main():
        return await asyncio.gather(*(one_client(c) for c in range(clients)))

    results = asyncio.run(asyncio.wait_for(main(), 120))
    served, wanted = np.array([pair for pairs in results for pair in pairs]).T
    assert len(served) > clients * per_client
    assert np.abs(served - wanted).max() <= TOLERANCE
    counters = server.service.batcher.counters
    assert counters["batches"] < clients * per_client  # requests from different clients shared forward passes
    assert not any(key.startswith(("rejected", "dropped", "failed")) for key in counters)


def test_openrlhf_payload_round_trips(start_server, offline_scorer, expected):
    server = start_server()
    texts = [rendered(offline_scorer, p, r) for p, r in POOL[:3]]
    pad = offline_scorer.loaded.tokenizer.pad_token
    body = {"query": [texts[0], texts[1] + pad * 3, texts[2]], "prompts": ["a", "b", "c"], "labels": [None] * 3}
    with client(server) as http:
        answer = http.post("/get_reward", json=body)
        legacy = http.post("/get_reward", json={"queries": texts[:1]})  # OpenRLHF < 0.5 sent "queries"
    assert answer.status_code == 200, answer.text
    rewards, scores = answer.json()["rewards"], answer.json()["scores"]
    np.testing.assert_allclose(rewards, expected["none"][:3], atol=TOLERANCE)  # trailing padding is ignored
    assert scores == pytest.approx([1 / (1 + math.exp(-r)) for r in rewards])
    assert legacy.json()["rewards"] == pytest.approx(rewards[:1], abs=TOLERANCE)


@pytest.mark.parametrize("trailing", ["", "\n\n", " \n"])
def test_rerender_scores_policy_strings_with_the_reward_models_template_and_criterion(
    start_server, offline_scorer, trailing
):
    """Equal to ``themis score`` whatever whitespace ends the response (it was stripped: off by up to 1.04)."""
    server = start_server(rerender=True, criteria="security")
    prompt, response = POOL[4][0], POOL[4][1] + trailing
    policy_prompt = (
        f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
    )
    policy_prompt += "<|im_start|>assistant\n"
    query = policy_prompt + response + "<|im_end|>\n<|endoftext|>"
    with client(server) as http:
        by_marker = http.post("/get_reward", json={"query": [query]}).json()["rewards"]
        by_prompt = http.post("/get_reward", json={"query": [query], "prompts": [policy_prompt]}).json()["rewards"]
    want = offline_scorer.score([prompt], [response], criteria="security")
    assert by_marker == pytest.approx(want, abs=TOLERANCE)
    assert by_prompt == pytest.approx(want, abs=TOLERANCE)
    assert server.service.health()["counters"]["policy_system_turns_replaced"] == 2
    if trailing:  # the test can fail: the stripped response scores differently
        assert offline_scorer.score([prompt], [response.rstrip()], criteria="security") != pytest.approx(want)


def test_rerender_of_a_policy_string_from_a_qwen3_style_template_equals_direct_scoring(start_server, offline_scorer):
    """The policy's generation prompt emits an empty think block; re-rendering must not score it twice."""
    server = start_server(rerender=True, criteria="full")
    tokenizer = offline_scorer.loaded.tokenizer
    queries, want = [], []
    for prompt, response in POOL[:4]:
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        queries.append(tokenizer.apply_chat_template(messages, tokenize=False))
        want.append(offline_scorer.score([prompt], [response], criteria="full")[0])
    assert all("<think>" in query for query in queries)  # the tiny Qwen3-style template adds it, as Qwen3 does
    with client(server) as http:
        rewards = http.post("/get_reward", json={"query": queries}).json()["rewards"]
    np.testing.assert_allclose(rewards, want, atol=TOLERANCE)


def test_verl_classify_payload_round_trips(start_server, offline_scorer, expected):
    server = start_server()
    texts = [rendered(offline_scorer, p, r) for p, r in POOL[:2]]
    with client(server) as http:
        verl_old = http.post("/classify", json={"model": "/ckpt/rm", "input": texts[0], "activation": False}).json()
        verl_new = http.post("/classify", json={"model": "/ckpt/rm", "input": texts[0], "use_activation": True})
        batch = http.post("/classify", json={"input": texts, "use_activation": False}).json()
    assert verl_old["data"][-1]["probs"][-1] == pytest.approx(expected["none"][0], abs=TOLERANCE)
    assert verl_new.json()["data"][-1]["probs"][-1] == pytest.approx(1 / (1 + math.exp(-expected["none"][0])))
    assert [d["index"] for d in batch["data"]] == [0, 1] and batch["object"] == "list"
    np.testing.assert_allclose([d["probs"][0] for d in batch["data"]], expected["none"][:2], atol=TOLERANCE)
    assert batch["usage"]["prompt_tokens"] > 0


def test_v1_score_answers_several_criteria_per_item_in_one_call(start_server, offline_scorer):
    server = start_server()
    pairs = POOL[5:8]
    items = [{"prompt": pairs[0][0], "response": pairs[0][1]}]
    items += [{"messages": [{"role": "user", "content": p}], "response": r} for p, r in pairs[1:]]
    with client(server) as http:
        separate = http.post("/v1/rewards", json={"items": items, "criteria": ["security", "runtime"]}).json()
        combined = http.post("/v1/rewards", json={"items": items, "criteria": "security,runtime"}).json()
        full = http.post("/v1/rewards", json={"items": items[:1], "criteria": "full"}).json()
    assert separate["criteria"] == ["Security_Hardness", "Runtime_Efficiency"]
    for label, spec in (("Security_Hardness", "security"), ("Runtime_Efficiency", "runtime")):
        got = [result["scores"][label] for result in separate["results"]]
        np.testing.assert_allclose(got, offline(offline_scorer, pairs, spec), atol=TOLERANCE)
    assert combined["criteria"] == ["Runtime_Efficiency+Security_Hardness"]
    got = [result["scores"]["Runtime_Efficiency+Security_Hardness"] for result in combined["results"]]
    np.testing.assert_allclose(got, offline(offline_scorer, pairs, "security,runtime"), atol=TOLERANCE)
    assert full["criteria"] == ["Full"]
    assert full["results"][0]["scores"]["Full"] == pytest.approx(
        offline(offline_scorer, pairs[:1], "full")[0], abs=1e-4
    )


def test_long_raw_strings_keep_their_end_and_report_the_cut(start_server, offline_scorer):
    server = start_server()
    text = rendered(offline_scorer, "Write f.", "x = 1\n" * 400)
    with client(server) as http:
        answer = http.post("/v1/rewards", json={"items": [{"prompt": "Write f.", "response": "x = 1\n" * 400}]})
        raw = http.post("/classify", json={"input": text, "use_activation": False})
    assert answer.json()["results"][0]["truncated_tokens"] > 0
    ids = offline_scorer.loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    want = offline_scorer.engine.score([ids[-offline_scorer.max_length :]])[0]
    assert raw.json()["data"][0]["probs"][0] == pytest.approx(want, abs=TOLERANCE)


def test_health_and_metrics_report_requests_batches_and_rejects(start_server, offline_scorer):
    server = start_server()
    with client(server) as http:
        http.post("/get_reward", json={"query": [rendered(offline_scorer, *POOL[0])]}).raise_for_status()
        assert http.post("/get_reward", json={"query": [1]}).status_code == 422
        health = http.get("/health")
        metrics = http.get("/metrics")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    text = metrics.text
    for line in (
        'themis_requests_total{endpoint="/get_reward",status="200"} 1.0',
        'themis_requests_total{endpoint="/get_reward",status="422"} 1.0',
        'themis_rejected_requests_total{reason="invalid_request"} 1.0',
        "themis_batch_items_count 1.0",
        "themis_queue_items 0.0",
    ):
        assert line in text, line
    assert "themis_request_latency_seconds_bucket" in text and "themis_tokens_per_second" in text
