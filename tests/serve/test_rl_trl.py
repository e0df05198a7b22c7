"""TRL's own ``GRPOTrainer`` (1.16.0) trains a tiny random policy for 2 steps on CPU with Themis rewards: one
reward function in-process, one over HTTP on a real ``themis serve``, mixed by ``reward_weights``. The rewards TRL
logs equal ``themis score`` of the same completions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.serve.test_app import PROMPTS

pytest.importorskip("trl", reason="trl is in the rl-clients extra (`make venv`)")

import trl
from datasets import Dataset

from themis_rm.integrations import ThemisReward, trl_inputs

TOLERANCE = 1e-4


class Recorded:
    """Wraps a backend to keep every batch TRL asked it to score (the completions of each step)."""

    def __init__(self, backend) -> None:
        self.backend, self.calls = backend, []

    def score(self, prompts, responses, criteria):
        rewards = self.backend.score(prompts, responses, criteria)
        self.calls.append((prompts, responses, rewards[:, 0].tolist()))
        return rewards


def two_step_grpo_args(tmp_path, **overrides) -> trl.GRPOConfig:
    """Two GRPO steps of 4 completions (2 prompts x 2 generations) on CPU, logged every step."""
    settings = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=0,
        disable_tqdm=True,
    )
    return trl.GRPOConfig(**{**settings, **overrides})


def test_grpo_trains_two_steps_on_themis_rewards_equal_to_themis_score(
    start_server, offline_scorer, policy_dir, tmp_path
):
    server = start_server()
    local = ThemisReward.local(offline_scorer, criteria="security")
    remote = ThemisReward.remote(server.url, criteria="runtime")
    local.backend, remote.backend = Recorded(local.backend), Recorded(remote.backend)
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in PROMPTS[:4]])
    args = two_step_grpo_args(tmp_path, reward_weights=[1.0, 0.5])
    trainer = trl.GRPOTrainer(model=str(policy_dir), reward_funcs=[local, remote], args=args, train_dataset=dataset)
    trainer.train()

    assert trainer.state.global_step == 2
    assert [len(f.backend.calls) for f in (local, remote)] == [2, 2]  # one scoring call per step per function
    logged = [row for row in trainer.state.log_history if "rewards/themis_security/mean" in row]
    assert len(logged) == 2
    for name, spec, function in (("themis_security", "security", local), ("themis_runtime", "runtime", remote)):
        for row, (prompts, responses, _) in zip(logged, function.backend.calls, strict=True):
            offline = offline_scorer.score(prompts, responses, criteria=spec)
            assert row[f"rewards/{name}/mean"] == pytest.approx(float(np.mean(offline)), abs=TOLERANCE)
        # the last batch's per-completion rewards, as TRL keeps them for its completions table
        prompts, responses = trl_inputs(list(trainer._logs["prompt"]), list(trainer._logs["completion"]))
        np.testing.assert_allclose(
            list(trainer._logs["rewards"][name]),
            offline_scorer.score(prompts, responses, criteria=spec),
            atol=TOLERANCE,
        )
