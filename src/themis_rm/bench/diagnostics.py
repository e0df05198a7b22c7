"""What pairwise accuracy alone hides: null baselines, calibration, ranking quality, length bias, edit size.

Pure functions over a bench run's scores table and its pairs' texts; :func:`pair_diagnostics` gathers them into
``diagnostics.json``. Every formula is in docs/bench-diagnostics.md; in short, with ``d = r_chosen - r_rejected``:

* **null baselines** score a pair by a rule that never reads the code: ``longer`` (the longer response wins),
  ``shorter``, ``random`` (a seeded coin). Accuracy per aspect x language beside the model's, and a flag wherever
  a baseline beats the model or passes 65% (there the subset rewards length, not quality);
* **calibration** of the Bradley-Terry probability ``p = sigmoid(d)`` that chosen is preferred: with confidence
  ``max(p, 1 - p)`` and the pick's correctness, the expected calibration error over equal-width bins, the
  maximum error, the Brier score ``mean((1 - p)^2)`` and the log loss ``mean(-log p)``;
* **ROC-AUC** of ``d``: each pair read in both orders (``d`` labelled preferred, ``-d`` not), so AUC is the chance
  that a random pair's ``d`` exceeds another's ``-d``;
* **length bias**: within each aspect, the Spearman correlation of reward with response length (both sides
  pooled), and how often the model picks the longer response;
* **edit size**: accuracy (model and baselines) by the share of lines that differ between chosen and rejected;
  near-identical pairs are where a model must read the code.

Pairs with a NaN score (a judge that gave no score) count as wrong in accuracies, as in ``results.json``, and are
left out of calibration, AUC and correlations (counted in ``n_excluded``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit
from scipy.stats import rankdata, spearmanr

from themis_rm.bench.metrics import bootstrap_mean_ci, pair_credit
from themis_rm.pairs import PreferencePair

DIAGNOSTICS_FILE = "diagnostics.json"
BASELINES = ("longer", "shorter", "random")
FLAG_ACCURACY = 0.65
"""A null baseline above this accuracy on a subset flags it, whatever the model scores."""
MIN_FLAG_PAIRS = 20
"""Cells smaller than this are reported but never flagged (a 3-pair cell at 67% is noise)."""
CALIBRATION_BINS = 10
EDIT_BUCKETS = ((0.0, 0.05, "<=5%"), (0.05, 0.2, "5-20%"), (0.2, 0.5, "20-50%"), (0.5, 1.0, ">50%"))


# ----------------------------------------------------------------------------------------- null baselines
def baseline_diffs(pairs: Sequence[PreferencePair], seed: int = 0) -> dict[str, np.ndarray]:
    """The score difference each null baseline gives every pair: +1 picks chosen, -1 rejected, 0 a tie."""
    longer = np.sign(_lengths(pairs, "chosen") - _lengths(pairs, "rejected"))
    coin = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=len(pairs))
    return {"longer": longer, "shorter": -longer, "random": coin}


def credit(score_diff: np.ndarray, ties: str) -> np.ndarray:
    """Per-pair credit of a score difference, by the bench's rule (:func:`~themis_rm.bench.metrics.pair_credit`)."""
    frame = pd.DataFrame({"chosen_score": score_diff, "rejected_score": np.zeros_like(score_diff)})
    frame["correct"] = frame["chosen_score"] > 0
    return pair_credit(frame, ties).to_numpy()


def accuracy_cells(values: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
    """``{"overall", "by_aspect": {a: {accuracy, count}}, "cells": {a: {language: {accuracy, count}}}}``."""
    series = pd.Series(values, index=frame.index)
    aspect, language = frame["aspect"].fillna("none"), frame["language"].fillna("none")
    cells: dict[str, dict[str, dict]] = {}
    for (a, lang), group in series.groupby([aspect, language], sort=True):
        cells.setdefault(str(a), {})[str(lang)] = _cell(group)
    by_aspect = {str(a): _cell(group) for a, group in series.groupby(aspect, sort=True)}
    return {"overall": _cell(series), "by_aspect": by_aspect, "cells": cells}


def baseline_report(pairs: Sequence[PreferencePair], frame: pd.DataFrame, ties: str, seed: int) -> dict[str, Any]:
    """The model's and each null baseline's accuracy tables, and the flags where a baseline wins or passes 65%."""
    model = credit(frame["score_diff"].to_numpy(dtype=np.float64), ties)
    tables = {"model": accuracy_cells(model, frame)}
    for name, diff in baseline_diffs(pairs, seed).items():
        tables[name] = accuracy_cells(credit(diff, ties), frame)
    return {"seed": seed, "accuracy": tables, "flags": baseline_flags(tables)}


def baseline_flags(tables: dict[str, dict]) -> list[dict[str, Any]]:
    """Every aspect x language cell (and aspect, and overall) where a null baseline beats the model or passes
    :data:`FLAG_ACCURACY`, with at least :data:`MIN_FLAG_PAIRS` pairs."""
    model = tables["model"]
    flags = []
    for name in BASELINES:
        for where, base_cell, model_cell in _cells_side_by_side(tables[name], model):
            base, own = base_cell["accuracy"], model_cell["accuracy"]
            if base_cell["count"] < MIN_FLAG_PAIRS or base is None:
                continue
            reasons = []
            if own is not None and base > own:
                reasons.append("beats_model")
            if base > FLAG_ACCURACY:
                reasons.append("above_65")
            if reasons:
                counts = {"baseline_accuracy": base, "model_accuracy": own, "count": base_cell["count"]}
                flags.append({"baseline": name, **where, **counts, "reasons": reasons})
    return flags


def _cells_side_by_side(table: dict, model: dict):
    yield {"aspect": None, "language": None}, table["overall"], model["overall"]
    for aspect, cell in table["by_aspect"].items():
        yield {"aspect": aspect, "language": None}, cell, model["by_aspect"][aspect]
    for aspect, languages in table["cells"].items():
        for language, cell in languages.items():
            yield {"aspect": aspect, "language": language}, cell, model["cells"][aspect][language]


# ------------------------------------------------------------------------------------------- calibration
def calibration(score_diff: np.ndarray, n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability of ``p = sigmoid(d)``: ECE, MCE, Brier, log loss, and the bins of a reliability diagram."""
    d = np.asarray(score_diff, dtype=np.float64)
    finite = np.isfinite(d)
    d = d[finite]
    report: dict[str, Any] = {"n": int(d.size), "n_excluded": int((~finite).sum())}
    if d.size == 0:
        return report | {"ece": None, "mce": None, "brier": None, "log_loss": None, "bins": []}
    p = expit(d)
    confidence = np.maximum(p, 1 - p)
    correct = (d > 0) + 0.5 * (d == 0)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    bins, ece, mce = [], 0.0, 0.0
    for b in range(n_bins):
        members = which == b
        count = int(members.sum())
        if count:
            conf, acc = float(confidence[members].mean()), float(correct[members].mean())
            ece += count / d.size * abs(acc - conf)
            mce = max(mce, abs(acc - conf))
        else:
            conf = acc = None
        bins.append(
            {"low": float(edges[b]), "high": float(edges[b + 1]), "count": count, "confidence": conf, "accuracy": acc}
        )
    brier = float(np.mean((1 - p) ** 2))
    log_loss = float(-np.mean(log_expit(d)))
    return report | {"ece": ece, "mce": mce, "brier": brier, "log_loss": log_loss, "bins": bins}


def roc_auc(score_diff: np.ndarray) -> float | None:
    """AUC of ``d`` with each pair read in both orders: P(d_i > -d_j) + P(d_i = -d_j) / 2 over all i, j."""
    d = np.asarray(score_diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None
    ranks = rankdata(np.concatenate([d, -d]))  # average ranks: ties count half
    n = d.size
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * n))


# ------------------------------------------------------------------------------------------- length bias
def length_bias(pairs: Sequence[PreferencePair], frame: pd.DataFrame) -> dict[str, Any]:
    """Per aspect (and overall): Spearman of reward with response length, and the share of picks that are the
    longer response (pairs of equal length or a NaN score left out)."""
    chosen_len, rejected_len = _lengths(pairs, "chosen"), _lengths(pairs, "rejected")
    chosen, rejected = (frame[c].to_numpy(dtype=np.float64) for c in ("chosen_score", "rejected_score"))
    aspect = frame["aspect"].fillna("none").to_numpy()

    def one(mask: np.ndarray) -> dict[str, Any]:
        rewards = np.concatenate([chosen[mask], rejected[mask]])
        lengths = np.concatenate([chosen_len[mask], rejected_len[mask]])
        finite = np.isfinite(rewards)
        rho = _spearman(rewards[finite], lengths[finite])
        decided = mask & (chosen_len != rejected_len) & np.isfinite(chosen - rejected) & (chosen != rejected)
        picks_longer = ((chosen > rejected) == (chosen_len > rejected_len))[decided]
        share = float(picks_longer.mean()) if picks_longer.size else None
        return {"spearman": rho, "picks_longer": share, "pairs": int(mask.sum()), "decided_pairs": int(decided.sum())}

    everything = np.ones(len(pairs), dtype=bool)
    return {"overall": one(everything), "by_aspect": {str(a): one(aspect == a) for a in sorted(set(aspect))}}


# --------------------------------------------------------------------------------------------- edit size
def edit_fractions(pairs: Sequence[PreferencePair]) -> np.ndarray:
    """Share of lines that differ between chosen and rejected: ``1 - SequenceMatcher(lines).ratio()``."""
    return np.array(
        [1.0 - difflib.SequenceMatcher(None, p.chosen.splitlines(), p.rejected.splitlines()).ratio() for p in pairs]
    )


def by_edit_size(pairs: Sequence[PreferencePair], frame: pd.DataFrame, ties: str, seed: int) -> dict[str, Any]:
    """Model and baseline accuracy per :data:`EDIT_BUCKETS` bucket of :func:`edit_fractions`."""
    fractions = edit_fractions(pairs)
    credits = {"model": credit(frame["score_diff"].to_numpy(dtype=np.float64), ties)}
    credits |= {name: credit(diff, ties) for name, diff in baseline_diffs(pairs, seed).items()}
    buckets = {}
    for low, high, label in EDIT_BUCKETS:
        members = (fractions > low) & (fractions <= high) if low else fractions <= high
        buckets[label] = {"count": int(members.sum())} | {
            name: (float(values[members].mean()) if members.any() else None) for name, values in credits.items()
        }
    return buckets


# ------------------------------------------------------------------------------------------------- report
def pair_diagnostics(
    pairs: Sequence[PreferencePair], frame: pd.DataFrame, ties: str = "wrong", seed: int = 0
) -> dict[str, Any]:
    """Everything above for one bench run (``pairs`` in ``frame``'s row order); ``diagnostics.json``."""
    diff = frame["score_diff"].to_numpy(dtype=np.float64)
    low, high = bootstrap_mean_ci(credit(diff, ties), n_bootstrap=2000, seed=seed)
    return {
        "accuracy_ci95": [_rounded(low), _rounded(high)],
        "baselines": baseline_report(pairs, frame, ties, seed),
        "calibration": calibration(diff),
        "roc_auc": roc_auc(diff),
        "length_bias": length_bias(pairs, frame),
        "by_edit_size": by_edit_size(pairs, frame, ties, seed),
    }


def _lengths(pairs: Sequence[PreferencePair], side: str) -> np.ndarray:
    return np.array([len(getattr(p, side)) for p in pairs], dtype=np.float64)


def _cell(values: pd.Series) -> dict[str, Any]:
    return {"accuracy": _rounded(float(values.mean())) if len(values) else None, "count": len(values)}


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return _rounded(float(spearmanr(a, b).statistic))


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)
