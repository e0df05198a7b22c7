"""``themis serve`` on real weights: ``/classify`` (as verl's own reward loop posts it) and ``/get_reward`` equal
``themis score`` for SmolLM2's BOS-free ChatML template and for a BOS-adding variant of it.

SmolLM2's ``bos_token`` is ``<|im_start|>``, the first token of its template, which its tokenizer does not add:
verl strips it from the rendered text as a BOS, and the server must put it back, as it does for a tokenizer that
adds a real BOS (the variant: ``<|endoftext|>`` written by the template and added by the tokenizer)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import LiveServer
from tests.serve.test_app import client
from tests.serve.test_rl_verl import disrm_worker, sample

from themis_rm.scoring import Scorer
from themis_rm.serve.service import RewardService
from themis_rm.serve.settings import ServeSettings

pytestmark = pytest.mark.real_model

PAIRS = [
    ("Write a Python function that returns the sum of a list.", "def total(xs):\n    return sum(xs)"),
    ("Write is_even(n) in Python.", "def is_even(n):\n    return n % 2 == 0"),
]
EXACT = 1e-4


@pytest.fixture(scope="module")
def bos_variant_dir(real_reward_dir, tmp_path_factory) -> Path:
    """The same weights; the tokenizer adds ``<|endoftext|>`` as BOS and the template writes it first."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("smollm2-bos")
    for name in os.listdir(real_reward_dir):
        if not name.startswith(("tokenizer", "special_tokens", "chat_template")):
            (out / name).symlink_to(real_reward_dir / name)
    tokenizer = AutoTokenizer.from_pretrained(real_reward_dir)
    tokenizer.bos_token = "<|endoftext|>"
    tokenizer.add_bos_token = True
    tokenizer.chat_template = "{{ bos_token }}" + tokenizer.chat_template
    tokenizer.save_pretrained(out)
    reloaded = AutoTokenizer.from_pretrained(out)
    assert reloaded("x")["input_ids"][0] == reloaded.bos_token_id == 0
    return out


@pytest.fixture(params=["chatml", "bos-adding"])
def served(request, real_reward_dir, bos_variant_dir):
    model_dir = real_reward_dir if request.param == "chatml" else bos_variant_dir
    settings = ServeSettings(model=str(model_dir), max_length=512)
    server = LiveServer(RewardService(Scorer.from_pretrained(str(model_dir), max_length=512), settings), settings)
    yield model_dir, Scorer.from_pretrained(str(model_dir), max_length=512, prompts="open"), server.start()
    server.stop()


def test_verls_reward_loop_gets_themis_scores_from_classify(served):
    model_dir, scorer, server = served
    tokenizer = scorer.loaded.tokenizer
    worker = disrm_worker(server, model_dir, tokenizer, tokenizer)
    got = [asyncio.run(worker.compute_score_disrm(sample(tokenizer, p, r)))["reward_score"] for p, r in PAIRS]
    np.testing.assert_allclose(got, [scorer.score([p], [r])[0] for p, r in PAIRS], atol=EXACT)


def test_get_reward_and_classify_equal_themis_score_on_the_rendered_conversation(served):
    _, scorer, server = served
    tokenizer = scorer.loaded.tokenizer
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False
        )
        for p, r in PAIRS
    ]
    want = [scorer.score([p], [r])[0] for p, r in PAIRS]
    with client(server) as http:
        raw = http.post("/get_reward", json={"query": texts}).json()["rewards"]
        classify = http.post("/classify", json={"input": texts, "use_activation": False}).json()["data"]
        chat = http.post("/v1/rewards", json={"items": [{"prompt": p, "response": r} for p, r in PAIRS]}).json()
    np.testing.assert_allclose(raw, want, atol=EXACT)
    np.testing.assert_allclose([d["probs"][0] for d in classify], want, atol=EXACT)
    np.testing.assert_allclose([r["scores"]["none"] for r in chat["results"]], want, atol=EXACT)


def test_get_reward_rerender_under_criteria_replaces_the_templates_default_system_prompt(real_reward_dir):
    """SmolLM2's template injects its own system prompt; under criteria the criterion prompt takes its place."""
    settings = ServeSettings(model=str(real_reward_dir), max_length=512, criteria="security", prompt_pack="open")
    service = RewardService.from_settings(settings)
    scorer = Scorer.from_pretrained(str(real_reward_dir), max_length=512, prompts="open")
    tokenizer = scorer.loaded.tokenizer
    server = LiveServer(service, settings).start()
    try:
        queries = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False
            )
            for p, r in PAIRS
        ]
        with client(server) as http:
            got = http.post("/get_reward", json={"query": queries}).json()["rewards"]
        assert service.health()["counters"]["policy_system_turns_replaced"] == len(PAIRS)
    finally:
        server.stop()
    np.testing.assert_allclose(
        got, scorer.score([p for p, _ in PAIRS], [r for _, r in PAIRS], criteria="security"), atol=EXACT
    )
