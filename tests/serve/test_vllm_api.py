"""vLLM's pooling API as a reward model answers it: ``/score`` in all four request shapes, ``/rerank``, ``/pooling``,
chat-form ``/classify`` and ``/v1/models``, in vLLM's layouts, with rewards equal to ``themis score``.

vLLM itself needs a GPU build to install, so these post the payloads its documentation and protocol define
(``vllm/entrypoints/pooling/*/protocol.py``: field names, defaults, answer layouts)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.serve.test_app import POOL, TOLERANCE, client, rendered
from tests.serve.test_safety import error_of

PROMPT = POOL[0][0]
DOCS = [r for p, r in POOL if p == PROMPT][:4]


def sigmoid(values):
    return [1 / (1 + math.exp(-v)) for v in values]


@pytest.mark.parametrize(
    ("first", "second"), [("queries", "documents"), ("queries", "items"), ("text_1", "text_2"), ("data_1", "data_2")]
)
def test_score_takes_every_vllm_request_shape(start_server, offline_scorer, first, second):
    server = start_server()
    want = offline_scorer.score([PROMPT] * len(DOCS), DOCS)
    with client(server) as http:
        one_to_n = http.post("/score", json={"model": "rm", first: PROMPT, second: DOCS}).json()
        n_to_n = http.post("/v1/score", json={first: [PROMPT] * 2, second: DOCS[:2], "use_activation": False}).json()
    assert one_to_n["object"] == "list" and one_to_n["id"].startswith("score-") and one_to_n["model"]
    assert [d["index"] for d in one_to_n["data"]] == [0, 1, 2, 3] and one_to_n["data"][0]["object"] == "score"
    np.testing.assert_allclose([d["score"] for d in one_to_n["data"]], sigmoid(want), atol=TOLERANCE)  # vLLM default
    np.testing.assert_allclose([d["score"] for d in n_to_n["data"]], want[:2], atol=TOLERANCE)  # raw on request
    assert one_to_n["usage"]["prompt_tokens"] > 0


def test_score_applies_the_servers_criteria_and_refuses_unpaired_lists(start_server, offline_scorer):
    server = start_server(criteria="security")
    with client(server) as http:
        got = http.post("/score", json={"queries": PROMPT, "documents": DOCS[:2], "use_activation": False}).json()
        unpaired = http.post("/score", json={"queries": [PROMPT] * 2, "documents": DOCS[:3]})
        truncating = http.post("/score", json={"queries": PROMPT, "documents": DOCS[:1], "truncate_prompt_tokens": 8})
        instructed = http.post("/score", json={"queries": PROMPT, "documents": DOCS[:1], "instruction": "Judge it."})
        parts = {"content": [{"type": "text", "text": PROMPT}]}  # vLLM's ScoreInput as content parts
        as_parts = http.post("/score", json={"queries": parts, "documents": DOCS[:2], "use_activation": False}).json()
    want = offline_scorer.score([PROMPT] * 2, DOCS[:2], criteria="security")
    np.testing.assert_allclose([d["score"] for d in got["data"]], want, atol=TOLERANCE)
    assert "1:1, 1:N or N:N; got 2 queries for 3 documents" in error_of(unpaired, 422)["message"]
    assert "truncate_prompt_tokens applies to 'input' only" in error_of(truncating, 422)["message"]
    assert "instruction is not supported" in error_of(instructed, 422)["message"]
    assert [d["score"] for d in as_parts["data"]] == [d["score"] for d in got["data"]]


def test_the_old_structured_body_on_v1_score_still_answers_and_points_to_v1_rewards(start_server, offline_scorer):
    server = start_server()
    body = {"items": [{"prompt": PROMPT, "response": DOCS[0]}], "criteria": "security"}
    with client(server) as http:
        legacy = http.post("/v1/score", json=body)
        current = http.post("/v1/rewards", json=body)
        not_on_score = http.post("/score", json=body)
    assert legacy.json()["results"] == current.json()["results"]
    assert legacy.headers["deprecation"] == "true" and "/v1/rewards" in legacy.headers["link"]
    assert "deprecation" not in current.headers
    assert error_of(not_on_score, 422)["param"] == "queries"  # /score is vLLM's only


def test_rerank_orders_candidate_responses_by_reward(start_server, offline_scorer):
    server = start_server()
    want = offline_scorer.score([PROMPT] * len(DOCS), DOCS)
    order = sorted(range(len(DOCS)), key=lambda i: -want[i])
    with client(server) as http:
        for path in ("/rerank", "/v1/rerank", "/v2/rerank"):
            answer = http.post(path, json={"model": "rm", "query": PROMPT, "documents": DOCS, "top_n": 2}).json()
            assert [r["index"] for r in answer["results"]] == order[:2]
            assert [r["document"]["text"] for r in answer["results"]] == [DOCS[i] for i in order[:2]]
            np.testing.assert_allclose(
                [r["relevance_score"] for r in answer["results"]], sigmoid([want[i] for i in order[:2]]), atol=TOLERANCE
            )
            assert answer["id"].startswith("score-") and answer["usage"]["total_tokens"] > 0  # as vLLM names them
            assert answer["results"][0]["document"]["multi_modal"] is None
        every = http.post("/rerank", json={"query": PROMPT, "documents": DOCS, "use_activation": False}).json()
    assert [r["index"] for r in every["results"]] == order  # top_n 0: all
    np.testing.assert_allclose(
        [r["relevance_score"] for r in every["results"]], [want[i] for i in order], atol=TOLERANCE
    )


def test_classify_and_pooling_take_the_chat_form(start_server, offline_scorer):
    server = start_server()
    messages = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": DOCS[1]}]
    want = offline_scorer.score([PROMPT], [DOCS[1]])[0]
    text = rendered(offline_scorer, PROMPT, DOCS[1])
    with client(server) as http:
        chat = http.post("/classify", json={"model": "rm", "messages": messages, "use_activation": False}).json()
        chat_default = http.post("/classify", json={"messages": messages}).json()
        pooled_text = http.post("/pooling", json={"model": "rm", "input": text, "use_activation": False}).json()
        pooled_chat = http.post("/pooling", json={"messages": messages}, headers={"X-Request-Id": "rollout-7"}).json()
    assert chat["data"][0]["probs"][0] == pytest.approx(want, abs=TOLERANCE)
    assert chat_default["data"][0]["probs"][0] == pytest.approx(sigmoid([want])[0], abs=TOLERANCE)
    assert pooled_text["id"].startswith("pooling-") and pooled_text["data"][0]["object"] == "pooling"
    assert pooled_text["data"][0]["data"] == pytest.approx([want], abs=TOLERANCE)
    assert pooled_chat["data"][0]["data"] == pytest.approx(sigmoid([want]), abs=TOLERANCE)  # vLLM's classify pooler
    assert pooled_chat["id"] == "pooling-rollout-7"  # the caller's request id, as vLLM echoes it


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"chat_template": "{{ messages }}"}, "chat_template is not supported"),
        ({"add_generation_prompt": True}, "add_generation_prompt is not supported"),
        ({"add_special_tokens": True}, "add_special_tokens must be false with messages"),
        ({"truncate_prompt_tokens": 16}, "truncate_prompt_tokens applies to 'input' only"),
        ({"input": "text"}, "exactly one of 'input'"),
    ],
)
def test_chat_classify_refuses_what_it_cannot_honour(start_server, extra, words):
    server = start_server()
    messages = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": DOCS[0]}]
    with client(server) as http:
        assert words in error_of(http.post("/classify", json={"messages": messages, **extra}), 422)["message"]
        ends_with_user = http.post("/classify", json={"messages": messages[:1]})
        assert "must end with the assistant turn" in error_of(ends_with_user, 422)["message"]


def test_models_lists_the_served_model(start_server, tiny_model_dir):
    server = start_server(served_model_name="themis-rm-tiny")
    with client(server) as http:
        models = http.get("/v1/models").json()
    assert models["object"] == "list" and len(models["data"]) == 1
    card = models["data"][0]
    assert (card["id"], card["object"], card["root"], card["max_model_len"]) == (
        "themis-rm-tiny",
        "model",
        str(tiny_model_dir),
        1024,
    )
