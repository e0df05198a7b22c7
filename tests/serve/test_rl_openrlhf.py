"""OpenRLHF's own released reward client (``openrlhf.utils.agent.SingleTurnAgentExecutor``, 0.11.2) against a real
``themis serve``: the rollout path that decodes prompt + generated ids and posts them to ``--reward.remote_url``,
and the ``reward_func`` file path with ``themis_rm.integrations.openrlhf``.

Installed without its GPU dependencies (the Makefile's ``NO_DEPS``); vLLM's generation is the only stand-in: an
engine object that "generates" a fixed response, since a policy's sampling is not what is under test.
"""

from __future__ import annotations

import asyncio
import types

import pytest

from tests.serve.test_app import POOL, TOLERANCE

pytest.importorskip("openrlhf.utils.agent", reason="openrlhf is installed by `make venv` (NO_DEPS)")

from openrlhf.utils import agent

PROMPT, RESPONSE = POOL[6]


class FixedGeneration:
    """vLLM's ``generate`` as OpenRLHF awaits it, answering with ``response_ids`` (ended by the policy's EOS)."""

    def __init__(self, response_ids: list[int]) -> None:
        self.response_ids = response_ids

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        output = types.SimpleNamespace(token_ids=self.response_ids, finish_reason="stop", logprobs=None)
        return types.SimpleNamespace(outputs=[output])


def rollout(executor, tokenizer, prompt_text: str, response: str, label: str = "label") -> dict:
    """One OpenRLHF single-turn rollout: the prompt rendered by the policy template, then the fixed response."""
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [
        tokenizer.convert_tokens_to_ids("<|im_end|>")
    ]
    params = types.SimpleNamespace(max_tokens=256, logprobs=None)
    run = executor.execute(prompt_text, label, params, 2048, tokenizer, FixedGeneration(response_ids))
    return asyncio.run(run)


def policy_prompt(tokenizer, prompt: str, system: str | None = None) -> str:
    turns = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)


def test_openrlhf_rollouts_get_the_offline_reward_of_the_string_they_post(start_server, offline_scorer):
    server = start_server()
    tokenizer = offline_scorer.loaded.tokenizer
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=f"{server.url}/get_reward")
    output = rollout(executor, tokenizer, policy_prompt(tokenizer, PROMPT), RESPONSE)
    posted = tokenizer.decode(output["observation_tokens"], skip_special_tokens=False)  # what OpenRLHF sends
    want = offline_scorer.score_rendered(offline_scorer.render_formatted([posted], add_special_tokens=False))
    assert output["reward"] == pytest.approx([want[0]], abs=TOLERANCE)
    assert 0 < output["scores"][0] < 1  # the sigmoid, read by dynamic filtering


def test_openrlhf_rollouts_under_criteria_score_the_conversation_with_the_criterion_prompt(
    start_server, offline_scorer
):
    """--rerender: the policy's system turn gives way to the criterion prompt; equals `themis score` of the chat."""
    server = start_server(rerender=True, criteria="security")
    tokenizer = offline_scorer.loaded.tokenizer
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=f"{server.url}/get_reward")
    output = rollout(executor, tokenizer, policy_prompt(tokenizer, PROMPT, system="You are Qwen."), RESPONSE)
    want = offline_scorer.score([PROMPT], [RESPONSE], criteria="security")
    assert output["reward"] == pytest.approx(want, abs=TOLERANCE)


def test_openrlhf_reward_func_file_scores_like_the_server(start_server, offline_scorer, monkeypatch):
    """OpenRLHF loads a .py given as the reward URL and calls its reward_func; ours splits and scores the same."""
    import themis_rm.integrations.openrlhf as reward_file

    server = start_server()
    monkeypatch.setenv("THEMIS_REWARD_URL", server.url)
    monkeypatch.setenv("THEMIS_REWARD_CRITERIA", "security")
    tokenizer = offline_scorer.loaded.tokenizer
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=reward_file.__file__)
    assert executor.reward_func is not None  # OpenRLHF took the file path
    output = rollout(executor, tokenizer, policy_prompt(tokenizer, PROMPT, system="You are Qwen."), RESPONSE)
    want = offline_scorer.score([PROMPT], [RESPONSE], criteria="security")
    assert output["reward"] == pytest.approx(want, abs=TOLERANCE)


def test_openrlhf_reward_func_file_returns_the_composite_reward_with_tests_from_labels(
    start_server, offline_scorer, monkeypatch, tmp_path
):
    """The same file with THEMIS_REWARD_COMPOSITE: each sample's label carries its tests (JSON)."""
    import json

    import themis_rm.integrations.openrlhf as reward_file

    spec = tmp_path / "spec.yaml"
    spec.write_text("components:\n  - {kind: tests, gate: {below: 1.0, floor: -5}}\nexecution: {timeout_s: 3}\n")
    server = start_server(reward_spec=spec)
    monkeypatch.setenv("THEMIS_REWARD_URL", server.url)
    monkeypatch.setenv("THEMIS_REWARD_COMPOSITE", "true")
    tokenizer = offline_scorer.loaded.tokenizer
    label = json.dumps({"tests": ["assert candidate(1, 2) == 3"], "entry_point": "add"})
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=reward_file.__file__)
    prompt = policy_prompt(tokenizer, "Write add(a, b).")
    right = rollout(executor, tokenizer, prompt, "def add(a, b):\n    return a + b\n", label=label)
    wrong = rollout(executor, tokenizer, prompt, "def add(a, b):\n    return a - b\n", label=label)
    assert right["reward"] == pytest.approx([1.0]) and wrong["reward"] == pytest.approx([-5.0])
