"""The one config mechanism: fields -> YAML, environment and flags, with every problem named once."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from themis_rm.bench.config import BenchConfig, RerankConfig
from themis_rm.cli import app
from themis_rm.config import config_leaves, config_to_dict, flag_names, load_config, setting, validate_config
from themis_rm.demo import DemoConfig
from themis_rm.errors import ThemisInputError
from themis_rm.scoring.config import ScoreConfig
from themis_rm.scoring.job import settings_path
from themis_rm.tiny import synthetic_pair_rows, write_pairs_jsonl
from themis_rm.train.config import TrainConfig

JOB_CONFIGS = (ScoreConfig, BenchConfig, RerankConfig, TrainConfig, DemoConfig)


@dataclass
class Inner:
    """Inner section."""

    size: int = setting(4, "Items per step.", gt=0)
    name: str = setting("a", "A name that clashes with the outer one.")


@dataclass
class Outer:
    """Toy config: for the mechanism's own tests."""

    name: str = setting("x", "The outer name.")
    mode: str = setting("fast", "How.", choices=("fast", "slow"), deprecated=("--speed",))
    tags: tuple[str, ...] = setting((), "Tags.")
    token: str | None = setting(None, "A secret.", secret=True)
    path: Path | None = setting(None, "Where.", required=True)
    inner: Inner = field(default_factory=Inner)

    def problems(self):
        if self.mode == "slow" and self.inner.size > 8:
            yield "--mode slow needs --size <= 8"


def test_flag_names_are_field_names_prefixed_by_their_section_only_on_a_clash():
    assert flag_names(Outer) == {
        ("name",): "name",
        ("mode",): "mode",
        ("tags",): "tags",
        ("token",): "token",
        ("path",): "path",
        ("inner", "size"): "size",
        ("inner", "name"): "inner-name",
    }
    assert flag_names(ScoreConfig)[("fields", "prompt")] == "prompt-field"  # a section's flag_format


def test_precedence_is_defaults_then_yaml_then_environment_then_flags(tmp_path, monkeypatch):
    yaml = tmp_path / "run.yaml"
    yaml.write_text("name: from-yaml\nmode: slow\ninner:\n  size: 2\npath: out\n")
    monkeypatch.setenv("TOY_MODE", "fast")
    monkeypatch.setenv("TOY_INNER_SIZE", "3")
    config = load_config(Outer, yaml, {"size": 5, "name": None}, env_prefix="TOY_")
    assert (config.name, config.mode, config.inner.size, config.path) == ("from-yaml", "fast", 5, Path("out"))
    assert config.inner.name == "a" and config.tags == ()


def test_every_yaml_problem_is_reported_at_once_naming_file_and_key(tmp_path):
    yaml = tmp_path / "bad.yaml"
    yaml.write_text("nmae: typo\ninner:\n  size: many\n  colour: red\n")
    with pytest.raises(ThemisInputError) as caught:
        load_config(Outer, yaml)
    message = str(caught.value)
    assert f"{yaml}: unknown key 'nmae'" in message
    assert f"{yaml}: unknown key 'inner.colour'" in message
    assert f"{yaml}: inner.size must be int, got 'many'" in message


def test_validation_names_each_flag_and_runs_the_cross_field_hook():
    with pytest.raises(ThemisInputError) as caught:
        load_config(Outer, None, {"mode": "slow", "size": 9})
    message = str(caught.value)
    assert message.startswith("invalid toy config")
    assert "--path is required (or 'path:' in the config YAML)" in message
    assert "--mode slow needs --size <= 8" in message
    with pytest.raises(ThemisInputError, match=r"--mode must be one of fast, slow, got 'medium'"):
        validate_config(Outer(path=Path("p"), mode="medium"))
    with pytest.raises(ThemisInputError, match=r"--size must be > 0, got 0"):
        validate_config(Outer(path=Path("p"), inner=Inner(size=0)))


def test_old_spellings_still_set_the_renamed_field_with_a_warning(tmp_path, caplog):
    yaml = tmp_path / "old.yaml"
    yaml.write_text("speed: slow\npath: p\n")
    with caplog.at_level(logging.WARNING):
        assert load_config(Outer, yaml).mode == "slow"
    assert "'speed' is deprecated; use 'mode'" in caplog.text
    assert load_config(Outer, None, {"speed": "slow", "path": "p"}).mode == "slow"
    assert load_config(TrainConfig, None, {"prompts": "open"}, validate=False).prompt_pack == "open"


def test_lists_accept_repeats_and_comma_lists_and_secrets_stay_out_of_records():
    config = load_config(Outer, None, {"tags": ["a,b", "c"], "token": "s3cret", "path": "p"})
    assert config.tags == ("a", "b", "c")
    assert "s3cret" not in repr(config)
    assert "token" not in config_to_dict(config) and config_to_dict(config)["inner"] == {"size": 4, "name": "a"}


@pytest.mark.parametrize("cls", JOB_CONFIGS, ids=lambda c: c.__name__)
def test_every_job_setting_has_help_and_a_unique_flag(cls):
    leaves = config_leaves(cls)
    assert all(leaf.help for leaf in leaves), [leaf.yaml_key for leaf in leaves if not leaf.help]
    flags = flag_names(cls)
    assert len(set(flags.values())) == len(flags)


def test_score_reads_a_yaml_config_and_a_flag_overrides_it(tiny_model_dir, tmp_path):
    pairs = write_pairs_jsonl(tmp_path / "pairs.jsonl", synthetic_pair_rows(6))
    out = tmp_path / "scores.jsonl"
    yaml = tmp_path / "score.yaml"
    yaml.write_text(
        f"model: {tiny_model_dir}\ninput: {pairs}\noutput: {out}\ndevice: cpu\nmax_length: 512\n"
        "fields:\n  aspect: aspect\n"
    )
    result = CliRunner().invoke(app, ["score", "--config", str(yaml), "--max-length", "1024"])
    assert result.exit_code == 0, result.output
    settings = json.loads(settings_path(out).read_text())
    assert settings["max_length"] == 1024 and settings["summary"]["rows"] == 6


def test_cli_errors_list_every_missing_setting_in_one_line_per_problem():
    result = CliRunner().invoke(app, ["bench", "--ties", "third"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    for expected in ("--model is required", "--data is required", "--output is required", "--ties must be one of"):
        assert expected in text


def test_deprecated_bench_flags_still_work(tiny_model_dir, tmp_path):
    pairs = write_pairs_jsonl(tmp_path / "pairs.jsonl", synthetic_pair_rows(4))
    args = ["bench", "--model", str(tiny_model_dir), "--data", str(pairs), "--output", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "--prompts-mode", "none", "--prompts", "open", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["prompt_mode"] == "none" and run["n_pairs"] == 4
