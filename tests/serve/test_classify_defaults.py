"""``/classify`` follows vLLM's defaults, which verl's reward loop relies on: BOS added once, sigmoid by default.

verl renders the conversation with the reward model's chat template, strips the leading BOS (vLLM adds it back,
``add_special_tokens`` being true by default) and posts ``use_activation: false``. A Llama-style reward model
scored without that BOS gets another reward; these tests use a tiny one whose template emits BOS.
"""

from __future__ import annotations

import math

import httpx
import pytest

from themis_rm.scoring import Scorer

pytest.importorskip("fastapi")

from tests.serve.conftest import LiveServer

from themis_rm.serve.service import RewardService
from themis_rm.serve.settings import ServeSettings

PROMPT, RESPONSE = "Write is_even(n).", "def is_even(n):\n    return n % 2 == 0\n"


@pytest.fixture(scope="module")
def llama_scorer(tiny_llama_dir) -> Scorer:
    return Scorer.from_pretrained(str(tiny_llama_dir), prompts="open", max_length=1024)


@pytest.fixture
def llama_server(tiny_llama_dir):
    settings = ServeSettings(model=str(tiny_llama_dir), max_length=1024)
    server = LiveServer(RewardService(Scorer.from_pretrained(str(tiny_llama_dir), max_length=1024), settings), settings)
    yield server.start()
    server.stop()


def _verl_text(scorer: Scorer) -> str:
    """What verl posts: the chat-templated conversation without its leading BOS."""
    tokenizer = scorer.loaded.tokenizer
    messages = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": RESPONSE}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text.startswith(tokenizer.bos_token), "the tiny Llama template must emit BOS for this test to mean much"
    return text.removeprefix(tokenizer.bos_token)


def test_verl_payload_gets_the_in_process_reward_of_a_bos_model(llama_server, llama_scorer):
    text = _verl_text(llama_scorer)
    want = llama_scorer.score([PROMPT], [RESPONSE])[0]
    with httpx.Client(base_url=llama_server.url, timeout=60, trust_env=False) as http:
        verl = http.post("/classify", json={"model": "rm", "input": [text], "use_activation": False}).json()
        default = http.post("/classify", json={"input": text}).json()
        bare = http.post("/classify", json={"input": text, "add_special_tokens": False, "use_activation": False})
        doubled = http.post("/classify", json={"input": llama_scorer.loaded.tokenizer.bos_token + text}).json()
    assert verl["data"][0]["probs"][0] == pytest.approx(want, abs=1e-4)
    assert default["data"][0]["probs"][0] == pytest.approx(1 / (1 + math.exp(-want)), abs=1e-5), "sigmoid default"
    assert bare.json()["data"][0]["probs"][0] != pytest.approx(want, abs=1e-4), "without BOS the reward differs"
    assert doubled["data"][0]["probs"][0] == pytest.approx(default["data"][0]["probs"][0], abs=1e-6), "one BOS"


def test_a_cut_keeps_the_bos_in_front_of_the_end(llama_scorer):
    text = _verl_text(llama_scorer)
    [full] = llama_scorer.render_formatted([text], add_special_tokens=True)
    budget = llama_scorer.renderer.max_length
    [long] = llama_scorer.render_formatted([text * (budget // len(full.input_ids) + 2)], add_special_tokens=True)
    bos = llama_scorer.loaded.tokenizer.bos_token_id
    assert full.input_ids[0] == bos and full.input_ids[1] != bos
    assert long.input_ids[0] == bos and len(long.input_ids) == budget and long.truncated_tokens > 0
    assert long.input_ids[-len(full.input_ids) + 1 :] == full.input_ids[1:], "the end, where the reward is read"


def test_token_ids_and_truncate_prompt_tokens_are_honoured(llama_server, llama_scorer):
    text = _verl_text(llama_scorer)
    [rendered] = llama_scorer.render_formatted([text], add_special_tokens=True)
    ids = rendered.input_ids
    k = 16
    kept = [ids[0], *ids[-(k - 1) :]]  # the BOS in front of the last k - 1 tokens
    want_full, want_cut = llama_scorer.engine.score([ids, kept])
    raw = {"use_activation": False}
    with httpx.Client(base_url=llama_server.url, timeout=60, trust_env=False) as http:
        by_ids = http.post("/classify", json={"input": ids, **raw}).json()
        both = http.post("/classify", json={"input": [ids, ids[1:]], **raw}).json()
        cut = http.post("/classify", json={"input": text, "truncate_prompt_tokens": k, **raw}).json()
        whole = http.post("/classify", json={"input": text, "truncate_prompt_tokens": -1, **raw}).json()
        zero = http.post("/classify", json={"input": text, "truncate_prompt_tokens": 0})
        alien = http.post("/classify", json={"input": [10**9]})
    assert by_ids["data"][0]["probs"][0] == pytest.approx(want_full, abs=1e-4)
    assert [d["index"] for d in both["data"]] == [0, 1]
    assert cut["data"][0]["probs"][0] == pytest.approx(want_cut, abs=1e-4) and cut["usage"]["prompt_tokens"] == k
    assert whole["data"][0]["probs"][0] == pytest.approx(want_full, abs=1e-4)
    assert zero.status_code == 422 and "truncate_prompt_tokens" in zero.text
    assert 400 <= alien.status_code < 500 and "input[0]" in alien.text
