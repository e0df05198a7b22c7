"""The data jobs' settings: the shipped pipeline.yaml, errors naming file and key, one help text per field."""

from __future__ import annotations

import logging
from importlib import resources

import pytest
from typer.testing import CliRunner

from themis_rm.cli.data import data_app
from themis_rm.config import config_leaves, flag_names
from themis_rm.data.bugs import MutateConfig
from themis_rm.data.config import PATH_KEYS, SOFT_PATH_KEYS, MineRunConfig, PipelineConfig, load_config
from themis_rm.errors import ThemisInputError
from themis_rm.sandbox import SandboxLimits

DATA_CONFIGS = (PipelineConfig, MineRunConfig, MutateConfig)


def test_shipped_pipeline_yaml_loads_with_paths_beside_it(tmp_path):
    text = (resources.files("themis_rm.data.resources") / "pipeline.yaml").read_text("utf-8")
    (tmp_path / "pipeline.yaml").write_text(text)
    config = load_config(tmp_path / "pipeline.yaml")
    assert config.output_dir == str(tmp_path / "out" / "preferences")
    assert config.assemble.prompt_pack is None and config.executor.tasks == 4 and config.mine.until == "2019-03-01"


def test_unknown_key_and_wrong_type_are_reported_together_with_file_and_dotted_key(tmp_path):
    yaml = tmp_path / "pipeline.yaml"
    yaml.write_text("output_dir: out\nmine:\n  colour: red\nexecutor:\n  tasks: many\n")
    with pytest.raises(ThemisInputError) as caught:
        load_config(yaml)
    message = str(caught.value)
    assert f"{yaml}: unknown key 'mine.colour'" in message
    assert f"{yaml}: executor.tasks must be int, got 'many'" in message


def test_section_checks_name_their_yaml_key_and_overrides_use_dotted_keys(tmp_path):
    yaml = tmp_path / "pipeline.yaml"
    yaml.write_text("output_dir: out\nllm:\n  judge: {votes: 2, min_matches: 3}\n")
    with pytest.raises(ThemisInputError, match=r"llm\.judge\.min_matches \(3\) must not exceed llm\.judge\.votes"):
        load_config(yaml)
    config = load_config(yaml, {"llm.judge.min_matches": 1, "executor.workers": -1, "aspects.terms_dir": "terms"})
    assert config.llm.judge.min_matches == 1 and config.executor.workers == -1
    assert config.aspects.terms_dir == str(tmp_path / "terms")  # an override is read like the file
    with pytest.raises(ThemisInputError, match=r"executor\.workers must be >= 1 or -1, got 0"):
        load_config(yaml, {"llm.judge.min_matches": 1, "executor.workers": 0})


def test_old_prompts_key_still_sets_the_prompt_pack_with_a_warning(tmp_path, caplog):
    yaml = tmp_path / "pipeline.yaml"
    yaml.write_text("output_dir: out\nassemble:\n  prompts: open\n")
    with caplog.at_level(logging.WARNING):
        assert load_config(yaml).assemble.prompt_pack == "open"
    assert "'assemble.prompts' is deprecated; use 'assemble.prompt_pack'" in caplog.text


@pytest.mark.parametrize("cls", DATA_CONFIGS, ids=lambda c: c.__name__)
def test_every_data_setting_has_help(cls):
    leaves = config_leaves(cls)
    assert all(leaf.help for leaf in leaves), [leaf.yaml_key for leaf in leaves if not leaf.help]


@pytest.mark.parametrize("cls", (MineRunConfig, MutateConfig), ids=lambda c: c.__name__)
def test_every_command_setting_has_a_unique_flag(cls):
    flags = flag_names(cls)
    assert len(set(flags.values())) == len(flags)


def test_path_keys_name_real_settings():
    keys = {leaf.yaml_key for leaf in config_leaves(PipelineConfig)}
    assert set(PATH_KEYS + SOFT_PATH_KEYS) <= keys


def test_mine_and_mutate_report_bad_settings_by_name():
    mine = CliRunner().invoke(data_app, ["mine", "repo", "--since", "yesterday", "--until", "2019-03-01"])
    text = " ".join(mine.output.split())
    assert mine.exit_code == 2 and "mine.since must be an ISO date" in text
    mutate = CliRunner().invoke(data_app, ["mutate", "--max-mutants", "3"])
    assert mutate.exit_code == 2 and "--output is required" in " ".join(mutate.output.split())


def test_cpu_limit_follows_the_wall_clock_unless_set():
    assert SandboxLimits(timeout_s=30).cpu_limit_s == 31
    assert SandboxLimits(timeout_s=30, cpu_s=5).cpu_limit_s == 5
