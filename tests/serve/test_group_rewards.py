"""``POST /v1/group_rewards`` on a live server: one GRPO group per call, the same rewards as ``themis reward``."""

from __future__ import annotations

import httpx
import pytest

from themis_rm.errors import ThemisInputError
from themis_rm.reward.composite import CompositeReward
from themis_rm.reward.groups import RewardGroup
from themis_rm.reward.spec import load_reward_spec
from themis_rm.serve.app import create_app
from themis_rm.serve.settings import ServeSettings

SPEC = """\
components:
  - {kind: rm, criteria: functional, normalize: group_z}
  - {kind: tests, weight: 2.0, gate: {below: 1.0, floor: -1.0}}
  - {kind: static, analyzer: bandit, weight: 0.5}
rm: {prompt_pack: open}
execution: {timeout_s: 3, workers: 2}
"""
GROUP = {
    "prompt": "Write add(a, b).",
    "completions": [
        "def add(a, b):\n    return a + b\n",
        "def add(a, b):\n    return a - b\n",
        "def add(a, b):\n    return eval(f'{a}+{b}')\n",
    ],
    "entry_point": "add",
    "tests": ["assert candidate(1, 2) == 3", "assert candidate(-1, 1) == 0"],
}


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_a_group_is_scored_in_one_call_as_themis_reward_scores_it(start_server, spec_path, serve_scorer):
    server = start_server(reward_spec=spec_path, prompt_pack="open")
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        answer = http.post("/v1/group_rewards", json=GROUP)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    spec = load_reward_spec(spec_path, model="served")
    (offline,) = CompositeReward(spec, scorer=serve_scorer).score([RewardGroup("group", **GROUP)])
    assert body["rewards"] == pytest.approx(offline.rewards, abs=1e-4)
    assert body["gated_by"] == [None, "tests", None]
    assert body["raw"]["tests"] == [1.0, 0.0, 1.0] and body["raw"]["static:bandit"] == [0.0, 0.0, -2.0]
    assert body["components"]["rm:functional"] == pytest.approx(
        offline.to_record()["components"]["rm:functional"], abs=1e-4
    )
    assert body["evidence"][1]["tests"]["first_failure"]["test"] == GROUP["tests"][0]
    assert body["executions"] == 3 and body["model"]


def test_a_bad_group_is_a_422_naming_the_field(start_server, spec_path):
    server = start_server(reward_spec=spec_path, prompt_pack="open")
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        missing = http.post("/v1/group_rewards", json={**GROUP, "completions": []})
        cobol = http.post("/v1/group_rewards", json={**GROUP, "language": "C"})
        unknown = http.post("/v1/rewards", json={"items": []})
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "completions"
    assert cobol.status_code == 422 and "not C" in cobol.json()["error"]["message"]
    assert unknown.status_code != 404  # the other routes are still there


def test_without_a_spec_there_is_no_route_and_a_bad_spec_stops_start_up(start_server, tmp_path, tiny_model_dir):
    server = start_server()
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as http:
        assert http.post("/v1/group_rewards", json=GROUP).status_code == 404
    bad = tmp_path / "bad.yaml"
    bad.write_text("components:\n  - {kind: static}\n")
    with pytest.raises(ThemisInputError, match="needs 'analyzer'"):
        create_app(ServeSettings(model=str(tiny_model_dir), reward_spec=bad))  # before the model loads
