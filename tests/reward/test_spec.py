"""The reward spec: one schema for YAML, TOML, JSON and Python, every bad field reported at once."""

from __future__ import annotations

import json

import pytest

from themis_rm.errors import ThemisInputError
from themis_rm.reward.spec import (
    CascadeSpec,
    ComponentSpec,
    RewardSpec,
    load_reward_spec,
    spec_to_dict,
    validate_reward_spec,
)

YAML = """\
rm: {model: some/model, dtype: bf16}
components:
  - {kind: rm, criteria: functional, weight: 1.0, normalize: group_z}
  - {kind: tests, weight: 2.0, gate: {below: 1.0, floor: -1.0}}
  - {kind: static, analyzer: ruff, weight: 0.1}
  - {kind: measure, metric: cpu_time, normalize: rank, name: speed}
cascade: {top_k: 2, margin: 0.5}
execution: {timeout_s: 5, workers: 2}
"""

TOML = """\
[rm]
model = "some/model"

[[components]]
kind = "rm"
criteria = "security"

[[components]]
kind = "static"
analyzer = "bandit"
weight = 0.5
"""


def test_a_yaml_spec_loads_with_defaults_and_labels(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(YAML)
    spec = load_reward_spec(path)
    assert [c.label for c in spec.components] == ["rm:functional", "tests", "static:ruff", "speed"]
    assert spec.components[1].gate.below == 1.0 and spec.components[1].gate.floor == -1.0
    assert spec.rm.model == "some/model" and spec.rm.dtype == "bf16"
    assert spec.cascade.top_k == 2 and spec.execution.workers == 2 and spec.execution.backend == "local"
    assert json.loads(json.dumps(spec_to_dict(spec)))["components"][3]["name"] == "speed"


def test_toml_and_json_specs_read_the_same_schema(tmp_path):
    toml = tmp_path / "spec.toml"
    toml.write_text(TOML)
    spec = load_reward_spec(toml)
    assert [c.label for c in spec.components] == ["rm:security", "static:bandit"]
    as_json = tmp_path / "spec.json"
    as_json.write_text(json.dumps(spec_to_dict(spec)))
    assert load_reward_spec(as_json) == spec


def test_a_malformed_spec_names_every_bad_field_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "components:\n"
        "  - {kind: static}\n"
        "  - {kind: tests, normalize: softmax, metric: cpu_time}\n"
        "  - {kind: rm}\n"
        "  - {kind: oracle}\n"
        "cascade: {top_k: 0}\n"
        "execution: {backend: sandbox_fusion, timeout_s: -1}\n"
    )
    with pytest.raises(ThemisInputError) as raised:
        load_reward_spec(path)
    message = str(raised.value)
    assert message.startswith(f"invalid reward spec {path}:")
    for expected in (
        "components[0]: a static component needs 'analyzer'",
        "components[1].normalize must be one of none, group_z, rank, got 'softmax'",
        "components[1]: 'metric' applies to measure components, not tests",
        "components[3].kind must be one of rm, tests, static, measure, got 'oracle'",
        "cascade.top_k must be >= 1, got 0",
        "execution.timeout_s must be > 0, got -1.0",
        "rm.model is required: a component of kind rm scores with it",
        "execution.url is required with backend sandbox_fusion",
    ):
        assert expected in message, (expected, message)


def test_unknown_keys_and_wrong_types_are_reported_with_the_rest(tmp_path):
    data = {
        "components": [{"kind": "tests", "wieght": 2}, {"kind": "static", "analyzer": "ruff", "weight": "high"}, 3],
        "cascade": {"top_k": 1},
        "colour": "blue",
    }
    with pytest.raises(ThemisInputError) as raised:
        load_reward_spec(data)
    message = str(raised.value)
    assert "components[0]: unknown key 'wieght'" in message
    assert "components[1]: weight must be float, got 'high'" in message
    assert "components[2] must be a mapping, got int" in message
    assert "top level: unknown key 'colour'" in message


def test_cross_field_rules_hold_for_specs_built_in_python():
    with pytest.raises(ThemisInputError) as raised:
        validate_reward_spec(
            RewardSpec(
                components=(ComponentSpec(kind="tests"), ComponentSpec(kind="tests")),
                cascade=CascadeSpec(top_k=2),
            )
        )
    message = str(raised.value)
    assert "two components are named 'tests'" in message and "cascade.top_k needs an rm component" in message
    with pytest.raises(ThemisInputError, match="at least one component"):
        validate_reward_spec(RewardSpec())
    with pytest.raises(ThemisInputError, match="no such file"):
        load_reward_spec("missing.yaml")
