"""Config: shipped YAMLs load, the recipes hold the paper's settings, flags override, errors name the flag/key."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

import themis_rm.train
from themis_rm.cli.train import train
from themis_rm.errors import ThemisInputError
from themis_rm.train.config import SECTIONS, TrainConfig, all_field_names, load_recipe

CONFIGS = Path(themis_rm.train.__file__).parent / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))
ACCELERATE = sorted((CONFIGS / "accelerate").glob("*.yaml"))


def test_every_shipped_yaml_is_found_and_starts_with_how_to_launch():
    assert {p.name for p in RECIPES} == {"pt.yaml", "pm.yaml"}
    assert {p.name for p in ACCELERATE} == {"single_gpu.yaml", "fsdp2.yaml", "zero3.yaml"}
    for path in (*RECIPES, *ACCELERATE):
        assert path.read_text().startswith("#") and "launch" in path.read_text().split("\n\n")[0].lower(), path


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_loads_and_validates(path):
    config = load_recipe(path).with_overrides({"model": "m", "data": "d.jsonl", "output": "out"})
    config.validate()


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_every_accelerate_config_loads_with_accelerate(path):
    from accelerate.commands.config.config_args import ClusterConfig

    cluster = ClusterConfig.from_yaml_file(str(path))
    expected = {"single_gpu.yaml": "NO", "fsdp2.yaml": "FSDP", "zero3.yaml": "DEEPSPEED"}[path.name]
    assert cluster.distributed_type.value == expected
    if expected == "FSDP":
        assert cluster.fsdp_config["fsdp_version"] == 2
        assert cluster.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert "fsdp_transformer_layer_cls_to_wrap" not in cluster.fsdp_config  # detected from the model
    if expected == "DEEPSPEED":
        assert cluster.deepspeed_config["zero_stage"] == 3


# (epochs, lr, min_lr, λ lm_weight, μ magnitude_weight) and (max_grad_norm, batch_size, max_length) of each stage
PAPER_SETTINGS = {
    "pt.yaml": ((2, 2e-5, 1e-5, 0.4, 0.01), (2.0, 1024, 2560)),
    "pm.yaml": ((1, 1e-5, 5e-7, 0.25, 0.001), (1.5, 512, 4096)),
}


@pytest.mark.parametrize("name", PAPER_SETTINGS)
def test_recipes_hold_the_papers_settings(name):
    recipe = load_recipe(CONFIGS / name)
    schedule, batch = PAPER_SETTINGS[name]
    run, optim, loss = recipe.run, recipe.optim, recipe.loss
    assert (run.epochs, optim.lr, optim.min_lr, loss.lm_weight, loss.magnitude_weight) == schedule
    assert (optim.max_grad_norm, recipe.batch.batch_size, recipe.batch.max_length) == batch
    assert optim.warmup_ratio == 0.05 and optim.weight_decay == 0.1
    assert (optim.adam_beta1, optim.adam_beta2, optim.fused) == (0.9, 0.95, "auto")


def test_flags_override_the_recipe_and_none_means_not_given():
    pt = load_recipe(CONFIGS / "pt.yaml")
    config = pt.with_overrides({"lr": 3e-6, "micro_batch_size": 1, "report_to": "jsonl,tensorboard", "seed": None})
    assert config.optim.lr == 3e-6 and config.batch.micro_batch_size == 1 and config.seed == pt.seed
    assert config.run.report_to == ("jsonl", "tensorboard")
    assert pt.optim.lr == 2e-5  # the recipe object is untouched
    assert config.with_overrides({"prompt_mix": "0.1,0.7,0.2"}).prompt_mix == (0.1, 0.7, 0.2)


def test_yaml_errors_name_the_file_and_key(tmp_path):
    bad_key = tmp_path / "typo.yaml"
    bad_key.write_text("loss:\n  lm_wieght: 0.3\n")
    with pytest.raises(ThemisInputError, match=r"typo\.yaml: unknown key 'loss\.lm_wieght'"):
        load_recipe(bad_key)
    bad_type = tmp_path / "type.yaml"
    bad_type.write_text("optim:\n  lr: fast\n")
    with pytest.raises(ThemisInputError, match=r"type\.yaml: optim\.lr must be float, got 'fast'"):
        load_recipe(bad_type)
    not_null = tmp_path / "null.yaml"
    not_null.write_text("batch:\n  batch_size: null\n")
    with pytest.raises(ThemisInputError, match=r"batch\.batch_size cannot be null"):
        load_recipe(not_null)


def test_validation_collects_every_problem_and_names_each_flag():
    config = TrainConfig().with_overrides(
        {"magnitude": "l2", "lr": 1e-6, "min_lr": 1e-5, "batch_size": 10, "micro_batch_size": 4, "prompt_mix": "1,1,1"}
    )
    with pytest.raises(ThemisInputError) as info:
        config.validate()
    message = str(info.value)
    for expected in (
        "--model is required",
        "--magnitude must be one of",
        "--min-lr",
        "--batch-size (10)",
        "--prompt-mix",
    ):
        assert expected in message


def test_cli_options_mirror_the_config_fields_one_to_one():
    options = set(inspect.signature(train).parameters) - {"config"}
    old_spellings = {name for name in options if "__deprecated_" in name}  # hidden aliases such as --prompts
    assert options - old_spellings == set(all_field_names())
    sections = {f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)}
    assert len(sections) == sum(len(dataclasses.fields(cls)) for cls in SECTIONS.values())  # names are unique


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = load_recipe(CONFIGS / "pm.yaml").with_overrides({"model": "m", "data": "d", "output": "o"})
    as_yaml = tmp_path / "resolved.yaml"
    as_yaml.write_text(yaml.safe_dump(config.to_dict()))
    assert load_recipe(as_yaml) == config


def test_optional_metric_sinks_name_their_extra_when_missing(tmp_path):
    import importlib.util

    from themis_rm.errors import MissingExtraError
    from themis_rm.train.metrics import JsonlSink, build_sinks

    sinks = build_sinks(("jsonl",), tmp_path, {}, None)
    assert len(sinks) == 1 and isinstance(sinks[0], JsonlSink)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(MissingExtraError, match=r"themis-rm\[train\]"):
            build_sinks(("jsonl", "tensorboard"), tmp_path, {}, None)
