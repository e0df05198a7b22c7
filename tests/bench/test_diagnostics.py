"""Benchmark diagnostics on constructed scores whose right answers are known by hand (issue 16, items 1, 2, 4)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from themis_rm.bench.diagnostics import (
    baseline_diffs,
    baseline_report,
    by_edit_size,
    calibration,
    length_bias,
    pair_diagnostics,
    roc_auc,
)
from themis_rm.bench.robustness import pairs_frame
from themis_rm.pairs import PreferencePair


def _pairs(n: int, seed: int = 0, aspects=("Functional_Correctness", "Runtime_Efficiency")) -> list[PreferencePair]:
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        chosen = "x = 1\n" * int(rng.integers(1, 30))
        rejected = "y = 2\n" * int(rng.integers(1, 30))
        pairs.append(PreferencePair(f"p{i}", "Write it.", chosen, rejected, aspects[i % len(aspects)], "Python", "S"))
    return pairs


def _frame(pairs, chosen, rejected):
    return pairs_frame(pairs, list(chosen), list(rejected))


def test_a_perfectly_calibrated_model_has_ece_near_zero_and_an_overconfident_one_does_not():
    """Labels drawn from sigmoid(d): the pair is presented chosen-first with probability sigmoid(d)."""
    rng = np.random.default_rng(1)
    d = rng.normal(0, 2, size=40_000)
    presented = np.where(rng.random(d.size) < expit(d), d, -d)
    calibrated = calibration(presented)
    assert calibrated["ece"] < 0.015 and calibrated["n"] == d.size
    assert sum(b["count"] for b in calibrated["bins"]) == d.size
    overconfident = calibration(presented * 4)
    assert overconfident["ece"] > 0.1 and overconfident["log_loss"] > calibrated["log_loss"]
    assert calibration(np.array([0.0, np.nan]))["n_excluded"] == 1


def test_roc_auc_by_hand():
    assert roc_auc(np.array([1.0, 2.0, 3.0])) == 1.0  # every pair ordered right
    assert roc_auc(np.array([0.0, 0.0])) == 0.5  # no information
    assert roc_auc(np.array([1.0, -2.0])) == 0.25  # of (1>-1, 1>2, -2>-1, -2>2) one holds
    assert roc_auc(np.array([np.nan])) is None


def test_a_length_only_model_matches_the_length_baseline_exactly():
    pairs = _pairs(200)
    frame = _frame(pairs, [len(p.chosen) for p in pairs], [len(p.rejected) for p in pairs])
    report = baseline_report(pairs, frame, ties="wrong", seed=0)
    assert report["accuracy"]["model"] == report["accuracy"]["longer"]
    bias = length_bias(pairs, frame)
    assert bias["overall"]["spearman"] == 1.0 and bias["overall"]["picks_longer"] == 1.0
    assert set(bias["by_aspect"]) == {"Functional_Correctness", "Runtime_Efficiency"}


def test_a_baseline_beating_the_model_or_passing_65_percent_is_flagged():
    """Chosen is always the longer response: 'longer' scores 100% where a coin-flip model scores about half."""
    pairs = [
        PreferencePair(f"p{i}", "p", "a\n" * 10, "b\n" * 2, "Runtime_Efficiency", "Go" if i < 30 else "C", "S")
        for i in range(40)
    ]
    model = np.where(np.arange(40) % 2 == 0, 1.0, -1.0)
    report = baseline_report(pairs, _frame(pairs, model, np.zeros(40)), ties="wrong", seed=0)
    longer = [f for f in report["flags"] if f["baseline"] == "longer"]
    cells = {(f["aspect"], f["language"]) for f in longer}
    assert cells == {(None, None), ("Runtime_Efficiency", None), ("Runtime_Efficiency", "Go")}  # C: 10 pairs only
    go = next(f for f in longer if f["language"] == "Go")
    assert go["reasons"] == ["beats_model", "above_65"] and go["baseline_accuracy"] == 1.0 and go["count"] == 30
    assert all(f["baseline"] != "shorter" for f in report["flags"])  # 0%: never flagged


def test_the_random_baseline_is_seeded_and_ties_follow_the_policy():
    pairs = _pairs(1000)
    assert np.array_equal(baseline_diffs(pairs, 3)["random"], baseline_diffs(pairs, 3)["random"])
    frame = _frame(pairs, np.zeros(1000), np.zeros(1000))  # every pair a tie
    wrong = baseline_report(pairs, frame, "wrong", 0)["accuracy"]
    half = baseline_report(pairs, frame, "half", 0)["accuracy"]
    assert wrong["model"]["overall"]["accuracy"] == 0.0 and half["model"]["overall"]["accuracy"] == 0.5
    assert 0.45 < wrong["random"]["overall"]["accuracy"] < 0.55


def test_accuracy_by_edit_size_buckets_pairs_by_the_share_of_lines_changed():
    base = "\n".join(f"line {i}" for i in range(40))
    one_line = base.replace("line 7", "line seven")  # 1 of 40 lines: 2.5%
    rewritten = "\n".join(f"other {i}" for i in range(40))
    pairs = [PreferencePair("a", "p", one_line, base, "F", "Python"), PreferencePair("b", "p", rewritten, base, "F")]
    buckets = by_edit_size(pairs, _frame(pairs, [1.0, 0.0], [0.0, 1.0]), "wrong", 0)
    assert buckets["<=5%"] == {
        "count": 1,
        "model": 1.0,
        "longer": 1.0,  # "line seven" is the longer side
        "shorter": 0.0,
        "random": buckets["<=5%"]["random"],
    }
    assert buckets[">50%"]["count"] == 1 and buckets[">50%"]["model"] == 0.0
    assert buckets["5-20%"] == {"count": 0, "model": None, "longer": None, "shorter": None, "random": None}


def test_pair_diagnostics_gathers_every_section_and_is_json_ready():
    import json

    pairs = _pairs(60)
    rng = np.random.default_rng(0)
    frame = _frame(pairs, rng.normal(size=60), rng.normal(size=60))
    report = pair_diagnostics(pairs, frame)
    assert set(report) == {"accuracy_ci95", "baselines", "calibration", "roc_auc", "length_bias", "by_edit_size"}
    low, high = report["accuracy_ci95"]
    assert low <= report["baselines"]["accuracy"]["model"]["overall"]["accuracy"] <= high
    json.dumps(report, allow_nan=False)
    with pytest.raises(ValueError):
        json.dumps({"x": float("nan")}, allow_nan=False)  # the check above can fail
