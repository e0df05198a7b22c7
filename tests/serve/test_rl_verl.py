"""verl's own released reward code (0.9.1) against a real ``themis serve``.

* The reward loop's reward-model path (``RewardLoopWorker.compute_score_disrm``): verl renders the chat with the
  reward model's template, strips a leading BOS, posts it to ``/classify`` with ``use_activation: false`` and reads
  ``data[-1].probs[-1]``. Run with a Qwen-style and a Llama-style (BOS-emitting) reward model: the reward equals
  ``themis score`` in-process.
* The custom-reward-function path: verl loads ``themis_rm.integrations.verl.compute_score`` through its own
  ``load_reward_manager`` and the ``naive`` manager calls it per sample.

Ray is not started: the worker is built without its ``__init__`` (which loads tokenizers from a training config)
and given the tokenizers directly; everything it does for a sample is verl's code.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import LiveServer
from tests.serve.test_app import POOL

pytest.importorskip("verl.experimental.reward_loop.reward_loop", reason="verl: `make venv` (NO_DEPS)")

import torch
from omegaconf import OmegaConf
from verl.experimental.reward_loop import reward_loop
from verl.protocol import DataProto

import themis_rm.integrations.verl as themis_verl
from themis_rm.scoring import Scorer
from themis_rm.serve.service import RewardService
from themis_rm.serve.settings import ServeSettings

EXACT = 1e-5  # one request each side, the same batch composition: equal up to float noise
PAIRS = POOL[10:13]


def sample(policy_tokenizer, prompt: str, response: str, **non_tensor) -> DataProto:
    """One rollout as verl's reward loop receives it: left-padded prompt ids, response ids ending in EOS."""
    prompt_ids = policy_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = policy_tokenizer(response, add_special_tokens=False)["input_ids"] + [policy_tokenizer.eos_token_id]
    pad = policy_tokenizer.pad_token_id or 0
    responses = torch.tensor([response_ids + [pad] * 3])
    mask = torch.tensor([[1] * len(prompt_ids) + [1] * len(response_ids) + [0] * 3])
    tensors = {"prompts": torch.tensor([prompt_ids]), "responses": responses, "attention_mask": mask}
    chat = np.empty(1, dtype=object)
    chat[0] = [{"role": "user", "content": prompt}]
    arrays = {"raw_prompt": chat}
    for key, value in non_tensor.items():
        arrays[key] = np.empty(1, dtype=object)
        arrays[key][0] = value
    return DataProto.from_dict(tensors=tensors, non_tensors=arrays)


def custom_reward_config(**reward_kwargs):
    """verl's config for our compute_score as its custom reward function, under the naive manager."""
    function = {"path": themis_verl.__file__, "name": "compute_score", "reward_kwargs": reward_kwargs}
    manager = {"source": "register", "name": "naive"}
    return OmegaConf.create({"reward": {"reward_manager": manager, "custom_reward_function": function}})


def disrm_worker(server: LiveServer, model_dir: Path, policy_tokenizer, rm_tokenizer):
    worker = reward_loop.RewardLoopWorker.__new__(reward_loop.RewardLoopWorker)
    worker.config = OmegaConf.create(
        {"reward": {"reward_model": {"rollout": {"name": "vllm"}, "model_path": str(model_dir)}}}
    )
    worker.reward_router_address = server.url.removeprefix("http://")
    worker.input_tokenizer, worker.reward_model_tokenizer = policy_tokenizer, rm_tokenizer
    return worker


@pytest.mark.parametrize("style", ["qwen3", "llama"])
def test_verl_reward_loop_gets_the_in_process_reward_from_classify(
    style, tiny_model_dir, tiny_llama_dir, offline_scorer
):
    model_dir = tiny_model_dir if style == "qwen3" else tiny_llama_dir
    scorer = offline_scorer if style == "qwen3" else Scorer.from_pretrained(str(model_dir), max_length=1024)
    settings = ServeSettings(model=str(model_dir), max_length=1024)
    server = LiveServer(RewardService(Scorer.from_pretrained(str(model_dir), max_length=1024), settings), settings)
    server.start()
    try:
        rm_tokenizer = scorer.loaded.tokenizer
        worker = disrm_worker(server, model_dir, offline_scorer.loaded.tokenizer, rm_tokenizer)
        got = [
            asyncio.run(worker.compute_score_disrm(sample(offline_scorer.loaded.tokenizer, p, r)))["reward_score"]
            for p, r in PAIRS
        ]
    finally:
        server.stop()
    if style == "llama":
        assert rm_tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False).startswith(
            rm_tokenizer.bos_token
        )
    want = [scorer.score([p], [r])[0] for p, r in PAIRS]
    np.testing.assert_allclose(got, want, atol=EXACT)


def test_verl_custom_reward_function_runs_themis_through_verls_own_loader(start_server, offline_scorer):
    from verl.trainer.ppo.reward import load_reward_manager

    server = start_server()
    config = custom_reward_config(url=server.url, criteria="security")
    tokenizer = offline_scorer.loaded.tokenizer
    manager = load_reward_manager(config, tokenizer)
    got = []
    for prompt, response in PAIRS:
        data = sample(
            tokenizer,
            prompt,
            response,
            data_source="themis",
            reward_model={"ground_truth": None},
            extra_info={"prompt": [{"role": "user", "content": prompt}]},
        )
        got.append(manager.loop.run_until_complete(manager.run_single(data))["reward_score"])  # verl's own loop
    want = offline_scorer.score([p for p, _ in PAIRS], [r for _, r in PAIRS], criteria="security")
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_verl_custom_reward_function_returns_the_composite_reward_of_a_server_with_a_spec(
    start_server, offline_scorer, tmp_path
):
    """verl's own loader and naive manager call compute_score per sample with reward_kwargs composite=true; the
    tests travel in extra_info (function calls) or an APPS-style ground_truth (input/output cases)."""
    from verl.trainer.ppo.reward import load_reward_manager

    from themis_rm.reward import CompositeReward, RewardGroup, load_reward_spec
    from themis_rm.sandbox.stdio import IOCase

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "components:\n  - {kind: rm, criteria: security}\n"
        "  - {kind: tests, weight: 2.0, gate: {below: 1.0, floor: -5}}\n"
        "rm: {prompt_pack: open}\nexecution: {timeout_s: 3}\n"
    )
    server = start_server(reward_spec=spec, prompt_pack="open")
    config = custom_reward_config(url=server.url, composite=True)
    tokenizer = offline_scorer.loaded.tokenizer
    manager = load_reward_manager(config, tokenizer)
    prompt = "Write add(a, b)."
    calls = {"prompt": prompt, "tests": ["assert candidate(1, 2) == 3"], "entry_point": "add"}
    cases = '{"inputs": ["1 2\\n"], "outputs": ["3\\n"]}'
    rollouts = [
        ("def add(a, b):\n    return a + b\n", calls, None),
        ("def add(a, b):\n    return a - b\n", calls, None),
        ("a, b = map(int, input().split())\nprint(a + b)\n", {"prompt": prompt}, cases),
    ]
    got = []
    for response, info, truth in rollouts:
        data = sample(
            tokenizer, prompt, response, data_source="code", reward_model={"ground_truth": truth}, extra_info=info
        )
        got.append(manager.loop.run_until_complete(manager.run_single(data))["reward_score"])
    composite = CompositeReward(load_reward_spec(spec, model="served"), scorer=offline_scorer)
    groups = [RewardGroup("g", prompt, [r], entry_point="add", tests=calls["tests"]) for r, _, _ in rollouts[:2]]
    groups.append(RewardGroup("g", prompt, [rollouts[2][0]], io_cases=[IOCase("1 2\n", "3\n")]))
    want = [result.rewards[0] for group in groups for result in composite.score([group])]
    assert got == pytest.approx(want, abs=1e-4)
    assert got[1] == -5.0 and got[2] != -5.0  # the wrong add is gated; the ground_truth case ran and passed
