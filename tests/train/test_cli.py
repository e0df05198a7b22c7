"""``themis train`` end to end through typer: recipe YAML + overriding flags, errors as one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from themis_rm.cli.train import train
from themis_rm.train.config import field_help
from themis_rm.train.loop import RUN_FILE

from .synthetic import operator_pairs, write_jsonl

app = typer.Typer()
app.command()(train)
runner = CliRunner()

RECIPE = """
loss: {lm_weight: 0.1, magnitude: abs_sum_sq}
optim: {lr: 1.0e-3, min_lr: 1.0e-4, warmup_ratio: 0.0}
batch: {batch_size: 8, micro_batch_size: 4, max_length: 128}
run: {epochs: 1, log_every: 2}
"""


def test_train_command_runs_a_recipe_with_flag_overrides(tiny_base_dir, short_pack_path, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    data = write_jsonl(tmp_path / "train.jsonl", operator_pairs(16, seed=0))
    result = runner.invoke(
        app,
        [
            *("--config", str(recipe), "--model", str(tiny_base_dir), "--data", str(data)),
            *("--output", str(tmp_path / "run"), "--prompts", str(short_pack_path), "--lr", "5e-4"),
            "--no-gradient-checkpointing",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "trained 2 steps" in result.output
    # not a terminal: one line per metric record (log_every 2), with loss, lr, throughput and ETA
    assert "step 2/2 loss " in result.output and " lr " in result.output and "tok/s" in result.output
    assert "eta 0 s" in result.output
    resolved = json.loads((tmp_path / "run" / RUN_FILE).read_text())["config"]
    assert resolved["optim"]["lr"] == 5e-4  # the flag beats the recipe
    assert resolved["loss"]["magnitude"] == "abs_sum_sq" and resolved["run"]["log_every"] == 2  # recipe beats defaults


def test_config_names_a_shipped_recipe_and_a_miss_lists_them(tmp_path, monkeypatch):
    from themis_rm.cli.options import resolve_recipe
    from themis_rm.errors import ThemisInputError
    from themis_rm.train.config import RECIPES_DIR, load_recipe

    monkeypatch.chdir(tmp_path)
    assert resolve_recipe(Path("pm"), RECIPES_DIR) == RECIPES_DIR / "pm.yaml"
    assert resolve_recipe(Path("pt.yaml"), RECIPES_DIR) == RECIPES_DIR / "pt.yaml"
    (tmp_path / "pm").write_text("run: {epochs: 3}\n")  # a file of that name wins: it is what was given
    assert resolve_recipe(Path("pm"), RECIPES_DIR) == Path("pm")
    with pytest.raises(ThemisInputError, match=r"--config pn: no such file.*shipped: pm, pt"):
        resolve_recipe(Path("pn"), RECIPES_DIR)
    assert load_recipe(RECIPES_DIR / "pt.yaml").loss.lm_weight is not None
    result = runner.invoke(app, ["--config", "nope", "--model", "m", "--data", "d", "--output", "o"])
    assert result.exit_code == 2 and "shipped: pm, pt" in " ".join(result.output.split())


def test_bad_values_fail_with_one_line_naming_the_flag(tmp_path):
    result = runner.invoke(app, ["--model", "m", "--data", "d", "--output", str(tmp_path), "--magnitude", "l2"])
    assert result.exit_code == 2
    assert "--magnitude must be one of center, abs_sum_sq, got 'l2'" in " ".join(result.output.split())


def test_help_text_comes_from_the_config_fields():
    result = runner.invoke(app, ["--help"], terminal_width=400)
    assert result.exit_code == 0
    assert field_help("lm_weight").split(":")[0] in result.output and "--resume" in result.output
