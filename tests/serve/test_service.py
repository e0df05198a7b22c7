"""RewardService without HTTP: raw strings are cut to the same token budget as rendered conversations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from themis_rm.scoring import Scorer
from themis_rm.serve.service import RewardService
from themis_rm.serve.settings import ServeSettings
from themis_rm.tiny import build_tiny_causal_lm

MAX_LENGTH = 64
QUESTION = "Is the response above correct? Answer True or False."
# What the tiny Qwen3-style template adds after the response for a following user turn plus the generation prompt.
QUESTION_TURN = f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def causal_lm_dir(tmp_path_factory, qwen_tokenizer) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("serve-causal-lm"), tokenizer=qwen_tokenizer)


@pytest.fixture(scope="module")
def logprob_scorer(causal_lm_dir) -> Scorer:
    """An lm-logprob scorer whose question turn the model appends to every sequence (16 tokens)."""
    spec = {"question": QUESTION, "yes": " True", "no": " False"}
    return Scorer.from_pretrained(
        str(causal_lm_dir), adapter="lm-logprob", adapter_spec=spec, max_length=MAX_LENGTH, dtype="fp32", device="cpu"
    )


def _serve_once(scorer: Scorer, settings: ServeSettings, call):
    """Start a service, run ``call(service)`` on its event loop, stop it; returns the call's result."""

    async def run():
        service = RewardService(scorer, settings)
        await service.start()
        try:
            return await call(service)
        finally:
            await service.stop()

    return asyncio.run(run())


def test_raw_get_reward_leaves_room_for_the_adapters_reserved_tokens(logprob_scorer, causal_lm_dir, qwen_tokenizer):
    loaded = logprob_scorer.loaded
    suffix_ids = qwen_tokenizer.encode(QUESTION_TURN, add_special_tokens=False)
    assert loaded.reserved_tokens == len(suffix_ids) > 0
    query = logprob_scorer.renderer.apply_template(
        [{"role": "user", "content": "Write f."}, {"role": "assistant", "content": "x = 1\n" * 100}]
    )
    query_ids = qwen_tokenizer(query, add_special_tokens=False)["input_ids"]
    seen: list[list[int]] = []
    hook = loaded.model.lm.base_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"][kwargs["attention_mask"].bool()].tolist()),
        with_kwargs=True,
    )
    settings = ServeSettings(model=str(causal_lm_dir), max_length=MAX_LENGTH, adapter="lm-logprob")
    try:
        scored = _serve_once(logprob_scorer, settings, lambda service: service.get_reward([query], None))
    finally:
        hook.remove()
    kept = MAX_LENGTH - len(suffix_ids)
    assert [len(ids) for ids in seen] == [MAX_LENGTH], "the model sees at most max_length tokens, question included"
    assert seen[0] == query_ids[-kept:] + suffix_ids, "the query keeps its end, where the reward is read"
    assert scored.truncated_tokens == [len(query_ids) - kept]
    assert scored.rewards == pytest.approx(logprob_scorer.engine.score([query_ids[-kept:]]).tolist(), abs=1e-5)
