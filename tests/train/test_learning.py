"""The loop learns, and the criteria prompts condition it: tiny models from scratch on synthetic preferences (CPU)."""

from __future__ import annotations

import pytest

from themis_rm.train.loop import run_training

from .synthetic import criteria_pairs, held_out_criteria_pairs, language_pairs, write_jsonl

# From-scratch tiny models need a large LR; the LM loss speeds up learning the token features the reward reads.
# 64 steps; both tasks are solved by about step 32 (seeds 0, 2, 3, 4 checked), twice that is the margin.
FAST_RECIPE = {
    "batch_size": 16,
    "micro_batch_size": 16,
    "lr": 1e-2,
    "min_lr": 1e-4,
    "warmup_ratio": 0.05,
    "epochs": 2,
    "lm_weight": 0.2,
    "magnitude_weight": 0.001,
    "max_length": 192,
    "eval_batch_size": 50,
    "log_every": 8,
}


@pytest.mark.slow
def test_tiny_model_learns_a_prompt_dependent_preference(small_config, tmp_path):
    """The prompt asks for Python or JavaScript and the answer in that language wins: the reward must read both."""
    train = write_jsonl(tmp_path / "train.jsonl", language_pairs(512, seed=0))
    held_out = write_jsonl(tmp_path / "held_out.jsonl", language_pairs(200, seed=1))
    summary = run_training(small_config(train, eval_data=str(held_out), **FAST_RECIPE))
    assert summary.eval_metrics["eval/pairs"] == 200
    assert summary.eval_metrics["eval/accuracy"] >= 0.90, summary.eval_metrics
    assert summary.metrics["loss/bt"] < 0.5


@pytest.mark.slow
def test_preference_flips_with_the_criterion_prompt(small_config, tmp_path):
    """Runtime_Efficiency prefers the set lookup, Readability_Maintainability the docstring, on the same code.

    Training rows carry no system prompt: the trainer samples none / the row's criterion / all five shuffled, so
    only the sampled criterion prompts tell the two apart. The held-out pairs are the same texts under each
    aspect's evaluation prompt, with the preferred side swapped.
    """
    train = write_jsonl(tmp_path / "train.jsonl", criteria_pairs(512, seed=0))
    held = [*held_out_criteria_pairs(100, 7, "Runtime_Efficiency")]
    held += held_out_criteria_pairs(100, 7, "Readability_Maintainability")
    assert {r["chosen"] for r in held[:100]} == {r["rejected"] for r in held[100:]}  # same code, roles swapped
    summary = run_training(
        small_config(train, eval_data=str(write_jsonl(tmp_path / "held.jsonl", held)), **FAST_RECIPE)
    )
    metrics = summary.eval_metrics
    # A model blind to the system prompt scores the swapped pairs identically: its two accuracies sum to ~1.
    # (Checked: training always under all five criteria gives 0.84 / 0.16.)
    assert metrics["eval/accuracy/Runtime_Efficiency"] >= 0.85, metrics
    assert metrics["eval/accuracy/Readability_Maintainability"] >= 0.85, metrics
