"""A tiny model's per-step losses equal the recorded curve: any change to data order, prompt sampling, rendering,
loss, normalisation, clipping or schedule shows here as a changed number.

Everything the curve depends on is pinned in this file: the tokenizer is trained on a fixed corpus (the default
tiny tokenizer learns from the running Python's standard library, which changes between patch releases), the
weights come from seed 0, the data and criteria prompts from the config's seed, and one intra-op thread
(``tests/train/conftest.py``) fixes the float summation order. What is left is float rounding across CPUs, about
2e-5 relative after a few steps (see ``test_distributed.py``), so values match to ``rel=1e-4``.

Re-record after an intended change (a new loss term, another default), and say why in the commit::

    THEMIS_RECORD=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/train/test_loss_curve.py

prints the new ``RECORDED`` table to paste below and skips the comparison.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from themis_rm.train.loop import run_training
from themis_rm.train.metrics import METRICS_FILE, read_metrics

from .synthetic import SHORT_PACK_TOML, operator_pairs, write_jsonl

LOSS_KEYS = ("loss/total", "loss/bt", "loss/lm", "loss/mag")
RECIPE = {
    "batch_size": 8,
    "micro_batch_size": 4,
    "max_length": 128,
    "lr": 3e-3,
    "min_lr": 1e-4,
    "warmup_ratio": 0.0,
    "lm_weight": 0.25,
    "magnitude_weight": 0.01,
    "max_steps": 6,
    "seed": 0,
}
# Recorded with THEMIS_RECORD=1 (torch 2.13.0 CPU, transformers 5.24, tokenizers 0.23); a row per step, LOSS_KEYS.
RECORDED = [
    [2.3461151, 0.69314718, 6.6118722, 0],
    [2.2505877, 0.69236917, 6.232828, 0.0011567129],
    [2.1640468, 0.69256565, 5.8859183, 0.00016466828],
    [2.1322682, 0.69613425, 5.7445258, 0.00022840073],
    [2.0979657, 0.69476636, 5.6127875, 0.00024916094],
    [2.0797462, 0.69446748, 5.5411077, 0.00019698744],
]


def _fixed_corpus() -> list[str]:
    """The tokenizer's training text: the task's own pairs and prompts, so its merges never change."""
    rows = operator_pairs(256, seed=7)
    return [SHORT_PACK_TOML, *(json.dumps(row) for row in rows)]


@pytest.fixture(scope="module")
def tiny_base_dir(tmp_path_factory) -> Path:
    """Overrides the conftest base model (used by ``small_config``): the tiny Qwen3 causal LM, seed 0, on the
    fixed-corpus tokenizer."""
    from themis_rm import tiny

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tiny, "_training_corpus", _fixed_corpus)
        tokenizer = tiny.build_tokenizer("qwen3")
    return tiny.build_tiny_causal_lm(tmp_path_factory.mktemp("curve-base"), tokenizer=tokenizer, seed=0)


def _loss_curve(small_config, tmp_path: Path) -> list[list[float]]:
    data = write_jsonl(tmp_path / "train.jsonl", operator_pairs(48, seed=0))
    summary = run_training(small_config(data, **RECIPE))
    records = [r for r in read_metrics(summary.output / METRICS_FILE) if "loss/total" in r]
    assert [r["step"] for r in records] == list(range(1, RECIPE["max_steps"] + 1))
    return [[r[key] for key in LOSS_KEYS] for r in records]


def test_tiny_model_loss_curve_matches_the_recorded_values(small_config, tmp_path, capsys):
    curve = _loss_curve(small_config, tmp_path)
    if os.environ.get("THEMIS_RECORD") == "1":
        table = "".join(f"    [{', '.join(format(v, '.8g') for v in row)}],\n" for row in curve)
        with capsys.disabled():
            print(f"\nRECORDED = [\n{table}]")
        pytest.skip("THEMIS_RECORD=1: printed the new RECORDED table instead of comparing")
    assert len(curve) == len(RECORDED)
    for step, (got, want) in enumerate(zip(curve, RECORDED, strict=True), start=1):
        for key, value, expected in zip(LOSS_KEYS, got, want, strict=True):
            assert value == pytest.approx(expected, rel=1e-4, abs=1e-6), (step, key)
