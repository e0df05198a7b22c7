"""Composite rewards inside RL frameworks' own loops: TRL's ``GRPOTrainer`` (1.16.0) trains two steps on a tiny
policy with the composite in-process and a component of it from a live ``themis serve --reward-spec``; verl's and
OpenRLHF's entry points regroup their flat batches and read tests from where those frameworks carry them."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("trl", reason="trl is in the rl-clients extra (`make venv`)")

import trl
from datasets import Dataset

from tests.serve.test_rl_trl import two_step_grpo_args

from themis_rm.integrations import ThemisCompositeReward
from themis_rm.integrations.composite import LocalComposite, group_samples

SPEC = """\
components:
  - {kind: rm, criteria: none, normalize: group_z}
  - {kind: tests, weight: 3.0}
  - {kind: static, analyzer: ruff, weight: 0.1}
rm: {prompt_pack: open}
execution: {timeout_s: 3, workers: 2}
"""
TESTS = ["assert candidate(1, 2) == 3"]


class Recorded:
    """Keeps every batch of groups a composite backend scored, and what it answered."""

    def __init__(self, backend) -> None:
        self.backend, self.calls = backend, []

    def score_groups(self, rows):
        records = self.backend.score_groups(rows)
        self.calls.append((rows, records))
        return records


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_grpo_trains_on_the_composite_reward_in_process_and_from_a_server(
    start_server, serve_scorer, policy_dir, spec_path, tiny_model_dir, tmp_path
):
    server = start_server(reward_spec=spec_path, prompt_pack="open")
    local = ThemisCompositeReward.local(str(spec_path), model=str(tiny_model_dir), scorer=serve_scorer)
    remote = ThemisCompositeReward.remote(server.url)
    local.backend, remote.backend = Recorded(local.backend), Recorded(remote.backend)
    (tests_only,) = remote.components(["tests"])
    dataset = Dataset.from_list([{"prompt": _prompt(i), "tests": TESTS, "entry_point": "add"} for i in range(4)])
    args = two_step_grpo_args(tmp_path, reward_weights=[1.0, 0.5])
    trainer = trl.GRPOTrainer(model=str(policy_dir), reward_funcs=[local, tests_only], args=args, train_dataset=dataset)
    trainer.train()

    assert trainer.state.global_step == 2
    assert len(local.backend.calls) == len(remote.backend.calls) == 2
    logged = [row for row in trainer.state.log_history if "rewards/themis_composite/mean" in row]
    assert len(logged) == 2
    for row, (groups, records) in zip(logged, local.backend.calls, strict=True):
        assert [len(g["completions"]) for g in groups] == [2, 2]  # each prompt's two generations: one group
        assert all(g["tests"] == TESTS and g["entry_point"] == "add" for g in groups)
        flat = [reward for record in records for reward in record["rewards"]]
        assert row["rewards/themis_composite/mean"] == pytest.approx(float(np.mean(flat)), abs=1e-4)
        offline = LocalComposite(local.backend.backend.composite).score_groups(groups)  # the same groups again
        assert _flat(offline) == pytest.approx(_flat(records), abs=1e-4)
    for row, (_, records) in zip(logged, remote.backend.calls, strict=True):
        flat = [value for record in records for value in record["components"]["tests"]]
        assert row["rewards/themis_tests/mean"] == pytest.approx(float(np.mean(flat)), abs=1e-4)


def _flat(records: list[dict]) -> list[float]:
    return [reward for record in records for reward in record["rewards"]]


def _prompt(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Write add(a, b) that returns their sum (#{i})."}]


def test_verl_and_openrlhf_batches_are_regrouped_with_their_tests(spec_path, tiny_model_dir, monkeypatch):
    from themis_rm.integrations import openrlhf, verl

    right, wrong = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"
    info = {"prompt": "Write add(a, b).", "tests": TESTS, "entry_point": "add"}
    apps = {"prompt": "Read a and b, print a + b."}
    truth = json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]})
    stdin_right = "a, b = map(int, input().split())\nprint(a + b)\n"
    rewards = verl.compute_score_batch(
        ["code"] * 4,
        [right, wrong, stdin_right, "print(0)\n"],
        [None, None, truth, truth],
        [info, info, apps, apps],
        reward_spec=str(spec_path),
        model=str(tiny_model_dir),
    )
    assert rewards[0] > rewards[1] and rewards[2] > rewards[3]
    monkeypatch.setenv("THEMIS_REWARD_REWARD_SPEC", str(spec_path))
    monkeypatch.setenv("THEMIS_REWARD_MODEL", str(tiny_model_dir))
    prompt = "<|im_start|>user\nWrite add(a, b).<|im_end|>\n<|im_start|>assistant\n"
    label = json.dumps({"tests": TESTS, "entry_point": "add"})
    answer = openrlhf.reward_func(
        [prompt + right + "<|im_end|>", prompt + wrong + "<|im_end|>"], [prompt] * 2, [label] * 2
    )
    assert answer["rewards"][0] > answer["rewards"][1] and set(answer["extra_logs"]) >= {"tests", "static:ruff"}


def test_samples_in_a_row_with_one_prompt_and_tests_form_one_group():
    groups = group_samples(["p", "p", "q", "p"], ["a", "b", "c", "d"], [{"tests": TESTS}, {"tests": TESTS}, {}, {}])
    assert [indices for _, indices in groups] == [[0, 1], [2], [3]]
    assert groups[0][0] == {"id": "sample-0", "tests": TESTS, "prompt": "p", "completions": ["a", "b"]}
