"""Benchmark metrics as pure functions over pandas tables: the pairwise CRB table and the rerank table.

The pairwise half reproduces the reference ``scores.parquet`` / ``results.json`` byte for byte, so our runs
diff cleanly against the published leaderboard. One valid ``scores.parquet`` row (index ``id``)::

    id="HUMANEVAL_PACK_b44039fd..."  chosen_score=2.31  rejected_score=-0.87  correct=True  score_diff=3.18
    language="Python"  aspect="Functional_Correctness"  subset="HUMANEVAL_PACK"

The rerank half scores best-of-n selection per question (Hits@K, Spearman against the pass rate, reward
spread), then averages over questions (macro), as the reference ``rerank_eval.py`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from themis_rm.atomic import atomic_path, write_text_atomic
from themis_rm.bench.config import TIE_POLICIES  # the choices of --ties, declared with the field
from themis_rm.errors import ThemisInputError

SCORE_COLUMNS = ("chosen_score", "rejected_score", "correct", "score_diff", "language", "aspect", "subset")
BREAKDOWNS = (("by_aspect", "aspect"), ("by_language", "language"), ("by_subset", "subset"))
PARSE_FAILED = "parse_failed"
REFERENCE_LAYOUTS = ("standard", "r3", "lmunit")
"""The ``results.json`` layouts of the reference scripts (REFERENCE-NOTES.md, §1.9 and §5):

* ``standard``: the scalar RMs, CE-RM and Nemotron-GenRM (a parse failure, if any, is an unmarked 0.0);
* ``r3``: a ``parse_failed`` column; the overall block adds ``accuracy_valid_only``, ``valid_pairs``,
  ``total_parse_failures``, ``parse_failure_rate`` (per pair), a top-level ``parse_failures``, and the
  score-difference statistics cover valid pairs only;
* ``lmunit``: a parse failure is the score 0.0, outside its 1-5 scale; the overall block adds ``parse_failures``
  (sequences scored 0.0) and ``parse_failure_rate`` (per sequence, 2 per pair) after ``correct_predictions``.
"""
LMUNIT_PARSE_FAILURE_SCORE = 0.0


# --------------------------------------------------------------------------- scores.parquet


def scores_frame(
    ids: Sequence[str],
    chosen: Sequence[float],
    rejected: Sequence[float],
    language: Sequence[str | None],
    aspect: Sequence[str | None],
    subset: Sequence[str | None],
) -> pd.DataFrame:
    """Build the reference ``scores.parquet`` table from per-pair scores and labels.

    ``correct`` is the strict ``chosen > rejected`` of the reference, so a tie or a NaN score is False; the
    tie policy is applied later, in :func:`compile_results`, so the table stays reference-compatible.

    Returns:
        Rows in input order, index ``id`` (str), columns ``chosen_score``/``rejected_score``/``score_diff``
        (float64), ``correct`` (bool) and ``language``/``aspect``/``subset`` (str; a missing label stays NaN).

    Raises:
        ThemisInputError: the sequences differ in length, or an id repeats.
    """
    _check_lengths(ids=ids, chosen=chosen, rejected=rejected, language=language, aspect=aspect, subset=subset)
    index = pd.Index([str(i) for i in ids], name="id", dtype="str")
    duplicated = index[index.duplicated()]
    if len(duplicated):
        raise ThemisInputError(f"scores_frame: id {duplicated[0]!r} appears more than once (ids must differ)")
    chosen_arr = np.asarray(chosen, dtype=np.float64)
    rejected_arr = np.asarray(rejected, dtype=np.float64)
    columns = {
        "chosen_score": chosen_arr,
        "rejected_score": rejected_arr,
        "correct": chosen_arr > rejected_arr,
        "score_diff": chosen_arr - rejected_arr,
        "language": pd.array(list(language), dtype="str"),
        "aspect": pd.array(list(aspect), dtype="str"),
        "subset": pd.array(list(subset), dtype="str"),
    }
    return pd.DataFrame(columns, index=index)


def write_scores_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a scores table with its ``id`` index stored as a column, as the reference files are."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=True)
    return path


def read_scores_parquet(path: str | Path) -> pd.DataFrame:
    """Read a ``scores.parquet`` (ours or a published reference run) and check it has the reference columns.

    Raises:
        ThemisInputError: the file is missing or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise ThemisInputError(f"{path}: scores file not found (expected a scores.parquet from a bench run)")
    df = pd.read_parquet(path)
    _require_columns(df, SCORE_COLUMNS, where=str(path))
    return df


def tie_count(df: pd.DataFrame) -> int:
    """Count exact ``chosen == rejected`` pairs (both finite): the reference scores them wrong, never reports them."""
    return int(_tie_pairs(df).sum())


def nan_count(df: pd.DataFrame) -> int:
    """Count pairs with a NaN chosen or rejected score (a parse failure, for generative judges)."""
    return int(_nan_pairs(df).sum())


# --------------------------------------------------------------------------- results.json


def compile_results(df: pd.DataFrame, ties: str = "wrong", layout: str = "standard") -> dict[str, Any]:
    """Compute the reference ``results.json`` content from a scores table.

    With ``ties="wrong"`` (the reference) the output equals the published files exactly, key order included:
    accuracies are ``round(np.float64, 4)`` and ``DataFrame.round(4)``, both numpy's round-half-even on the
    scaled value (``1/160`` gives 0.0062 where Python's float ``round`` gives 0.0063), breakdown keys are
    sorted, std is pandas' ddof=1. ``layout`` names the reference script whose fields to write
    (:data:`REFERENCE_LAYOUTS`): never guessed from the data, where a 0.0 may be a score or a failure.

    Args:
        df: A scores table as built by :func:`scores_frame` or read by :func:`read_scores_parquet`.
        ties: ``"wrong"`` counts ties as incorrect; ``"half"`` gives a true tie (both scores finite and equal)
            0.5 in every accuracy (``correct_predictions`` still counts strict wins, so it stays an integer).
            A pair with a NaN score is wrong under every policy: a failed parse must not earn credit.
        layout: ``standard`` (our runs and most reference ones), ``r3`` or ``lmunit``.

    Returns:
        ``{"overall", "by_aspect", "by_language", "by_subset"}`` (plus ``"parse_failures"`` for R3-style
        tables), JSON-ready: a NaN statistic (e.g. of an empty table) is ``None``.

    Raises:
        ThemisInputError: ``ties`` or ``layout`` is unknown, a required column is missing, or the table does
            not fit the layout (an R3 ``parse_failed`` column under another layout, or none under ``r3``).
    """
    _check_tie_policy(ties)
    _require_columns(df, SCORE_COLUMNS, where="scores table")
    _check_layout(df, layout)
    credit = pair_credit(df, ties)
    results: dict[str, Any] = {"overall": _overall(df, credit, layout)}
    for key, column in BREAKDOWNS:
        results[key] = _breakdown(credit, df[column])
    if layout == "r3":
        results["parse_failures"] = int(df[PARSE_FAILED].sum())
    return results


def _check_layout(df: pd.DataFrame, layout: str) -> None:
    if layout not in REFERENCE_LAYOUTS:
        raise ThemisInputError(f"--format must be one of {', '.join(REFERENCE_LAYOUTS)}, got {layout!r}")
    has_flags = PARSE_FAILED in df.columns
    if has_flags and layout != "r3":
        raise ThemisInputError(f"the scores table has R3's {PARSE_FAILED!r} column: summarize it with --format r3")
    if layout == "r3" and not has_flags:
        raise ThemisInputError(f"--format r3 needs the {PARSE_FAILED!r} column R3 runs write; this table has none")


def write_results_json(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write results as the reference does: ``json.dump(indent=2)``, no trailing newline.

    NaN becomes ``null`` and ``allow_nan=False`` guards the rest: the reference rerank script wrote bare
    ``NaN``, which strict JSON parsers reject.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(_json_safe(results), indent=2, allow_nan=False))
    return path


def summarize_scores_file(
    scores_parquet_path: str | Path, ties: str = "wrong", layout: str = "standard"
) -> dict[str, Any]:
    """Rebuild ``results.json`` content from a ``scores.parquet`` in the ``layout`` of the script that wrote it:
    every published reference run reproduces byte for byte (REFERENCE-NOTES.md §5.2; LMUnit and CE-RM too)."""
    return compile_results(read_scores_parquet(scores_parquet_path), ties=ties, layout=layout)


def _check_tie_policy(ties: str) -> None:
    if ties not in TIE_POLICIES:
        raise ThemisInputError(f"--ties must be 'wrong' or 'half', got {ties!r}")


def _nan_pairs(df: pd.DataFrame) -> pd.Series:
    return df["chosen_score"].isna() | df["rejected_score"].isna()


def _tie_pairs(df: pd.DataFrame) -> pd.Series:
    """Pairs whose two scores are finite and equal; NaN never equals anything, and inf == inf is no real tie."""
    chosen = df["chosen_score"]
    return (chosen == df["rejected_score"]) & np.isfinite(chosen.to_numpy(dtype=np.float64))


def pair_credit(df: pd.DataFrame, ties: str) -> pd.Series:
    """Per-pair credit in [0, 1] (float64): the reference ``correct``, plus 0.5 for a true tie under "half".

    A NaN pair keeps 0 under both policies (it is counted by :func:`nan_count` instead): giving a failed judge
    parse half credit would reward a judge for not answering.
    """
    credit = df["correct"].astype("float64")
    if ties == "half":
        credit = credit.mask(_tie_pairs(df), 0.5)
    return credit


def bootstrap_mean_ci(correct: np.ndarray, n_bootstrap: int, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of a mean: per-pair credit (1 correct, 0 wrong, 0.5 a half-credit tie) or
    per-question values (a best-of-N pass expectation).

    Resampling n values with replacement only matters through how often each distinct value is drawn, so the
    draw is one multinomial over the distinct values: the same distribution as resampling indices, in
    O(n_bootstrap · k) memory instead of O(n_bootstrap · n). Deterministic for a seed.

    Returns:
        ``(low, high)`` as Python floats; ``(nan, nan)`` for an empty array.

    Raises:
        ThemisInputError: ``correct`` holds a NaN, or ``n_bootstrap`` < 1.
    """
    values = np.asarray(correct, dtype=np.float64).ravel()
    if n_bootstrap < 1:
        raise ThemisInputError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    if values.size == 0:
        return (math.nan, math.nan)
    if np.isnan(values).any():
        raise ThemisInputError("bootstrap_mean_ci: the values contain NaN (score NaN pairs as 0 or 0.5)")
    distinct, counts = np.unique(values, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(values.size, counts / values.size, size=n_bootstrap)
    means = draws @ distinct / values.size
    low, high = np.quantile(means, [0.025, 0.975])
    return (float(low), float(high))


def _overall(df: pd.DataFrame, credit: pd.Series, layout: str) -> dict[str, Any]:
    """The ``overall`` block, fields in the reference order (R3's and LMUnit's where their scripts put them)."""
    has_parse_flags = layout == "r3"
    valid = ~df[PARSE_FAILED].astype(bool) if has_parse_flags else pd.Series(True, index=df.index)
    overall: dict[str, Any] = {"accuracy": _round(credit.mean(), 4)}
    if has_parse_flags:
        overall["accuracy_valid_only"] = _round(credit[valid].mean(), 4)
    overall["total_examples"] = len(df)
    overall["correct_predictions"] = int(df["correct"].sum())
    if layout == "lmunit":
        scores = df[["chosen_score", "rejected_score"]].to_numpy(dtype=np.float64)
        failures = int((scores == LMUNIT_PARSE_FAILURE_SCORE).sum())
        overall["parse_failures"] = failures
        # Python's round of a Python float ratio, as the LMUnit script writes it.
        overall["parse_failure_rate"] = round(failures / (2 * len(df)), 4) if len(df) else 0.0
    overall.update(_score_diff_stats(df.loc[valid, "score_diff"]))
    if has_parse_flags:
        failures = int((~valid).sum())
        overall["valid_pairs"] = int(valid.sum())
        overall["total_parse_failures"] = failures
        # A ratio of Python ints, so Python's round (an inference: both rules agree on the published runs).
        overall["parse_failure_rate"] = round(failures / len(df), 4) if len(df) else None
    return overall


def _score_diff_stats(score_diff: pd.Series) -> dict[str, float | None]:
    return {
        "mean_score_difference": _round(score_diff.mean(), 4),
        "median_score_difference": _round(score_diff.median(), 4),
        "std_score_difference": _round(score_diff.std(ddof=1), 4),
    }


def _breakdown(credit: pd.Series, labels: pd.Series) -> dict[str, dict[str, Any]]:
    """``{label: {"accuracy", "count"}}`` sorted by label, as the reference's groupby + ``round(4)`` gives."""
    table = credit.groupby(labels, sort=True, observed=True).agg(["mean", "count"]).round(4)
    return {
        str(label): {"accuracy": _none_if_nan(float(row["mean"])), "count": int(row["count"])}
        for label, row in table.iterrows()
    }


def _round(value: float, ndigits: int) -> float | None:
    """Round like the reference (Python ``round`` on numpy float64, i.e. numpy's rule); NaN becomes None."""
    return _none_if_nan(float(round(np.float64(value), ndigits)))


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _json_safe(value: Any) -> Any:
    """Recursively replace NaN floats with None and numpy scalars with Python ones."""
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --------------------------------------------------------------------------- rerank


def rerank_question_metrics(
    rewards: Sequence[float],
    num_passed: Sequence[int],
    num_failed: Sequence[int],
    final_verdict: Sequence[bool],
    ks: Iterable[int] = (5, 10),
) -> dict[str, Any]:
    """Score one question's n completions: does the reward pick a passing one and track the pass rate?

    Ties in the reward are broken by a *stable* sort on descending reward, so among equal rewards the earlier
    completion ranks first and the result is reproducible (the reference used ``np.argsort``'s unstable
    quicksort, i.e. arbitrary order). A NaN reward ranks last.

    Returns:
        ``n_completions``, ``n_passing``, ``reward_mean``, ``reward_std``, ``reward_variance`` (population,
        ddof=0), ``hits_at_K`` per K (1.0/0.0; K capped at n; NaN when no completion passes) and ``spearman``
        (rewards vs pass rate; NaN when n < 2 or either side is constant). NaN stays NaN: this is a table row.

    Raises:
        ThemisInputError: the four sequences differ in length.
    """
    _check_lengths(rewards=rewards, num_passed=num_passed, num_failed=num_failed, final_verdict=final_verdict)
    reward_arr = np.asarray(rewards, dtype=np.float64)
    verdict = np.asarray(final_verdict, dtype=bool)
    n_passing = int(verdict.sum())
    row: dict[str, Any] = {"n_completions": len(reward_arr), "n_passing": n_passing}
    row.update(_reward_moments(reward_arr))
    ranked_verdict = verdict[np.argsort(-reward_arr, kind="stable")]
    for k in ks:
        row[f"hits_at_{k}"] = float(ranked_verdict[:k].any()) if n_passing else math.nan
    row["spearman"] = _spearman(reward_arr, pass_rates(num_passed, num_failed))
    return row


def pass_rates(num_passed: Sequence[int], num_failed: Sequence[int]) -> np.ndarray:
    """Per-completion ``passed / (passed + failed)``; 0.0 for a completion with no tests run."""
    passed = np.asarray(num_passed, dtype=np.float64)
    total = passed + np.asarray(num_failed, dtype=np.float64)
    return np.divide(passed, total, out=np.zeros_like(passed), where=total > 0)


def aggregate_rerank(per_question_df: pd.DataFrame) -> dict[str, Any]:
    """Average per-question rerank rows over questions (macro), in the reference's fields and rounding.

    Hits@K is averaged over questions with at least one passing completion only; Spearman over questions where
    it is defined. The reference writes this dict as ``{"overall": ...}`` in ``results.json``.

    Returns:
        ``n_questions``, ``n_questions_with_positive``, ``total_completions``,
        ``reward_variance_mean/median/std`` (round 6; std ddof=1), ``hits_at_K`` (round 4, K ascending),
        ``spearman_mean/median`` (round 4); JSON-ready, with None where a statistic is undefined.

    Raises:
        ThemisInputError: a required column is missing.
    """
    df = per_question_df
    _require_columns(df, ("n_completions", "n_passing", "reward_variance", "spearman"), where="rerank table")
    with_positive = df["n_passing"] > 0
    variance = df["reward_variance"]
    agg: dict[str, Any] = {
        "n_questions": len(df),
        "n_questions_with_positive": int(with_positive.sum()),
        "total_completions": int(df["n_completions"].sum()),
        "reward_variance_mean": _round(variance.mean(), 6),
        "reward_variance_median": _round(variance.median(), 6),
        "reward_variance_std": _round(variance.std(ddof=1), 6),
    }
    for column in _hits_columns(df):
        agg[column] = _round(df.loc[with_positive, column].mean(), 4)
    spearman = df["spearman"].dropna()
    agg["spearman_mean"] = _round(spearman.mean(), 4)
    agg["spearman_median"] = _round(spearman.median(), 4)
    return agg


def _reward_moments(rewards: np.ndarray) -> dict[str, float]:
    if rewards.size == 0:
        return {"reward_mean": math.nan, "reward_std": math.nan, "reward_variance": math.nan}
    return {
        "reward_mean": float(np.mean(rewards)),
        "reward_std": float(np.std(rewards, ddof=0)),
        "reward_variance": float(np.var(rewards, ddof=0)),
    }


def _spearman(rewards: np.ndarray, rates: np.ndarray) -> float:
    """Spearman with average ranks; NaN up front where it is undefined, instead of scipy's warning."""
    if rewards.size < 2 or np.ptp(rewards) == 0 or np.ptp(rates) == 0:
        return math.nan
    return float(spearmanr(rewards, rates).statistic)


def _hits_columns(df: pd.DataFrame) -> list[str]:
    hits = [column for column in df.columns if column.startswith("hits_at_")]
    return sorted(hits, key=lambda column: int(column.removeprefix("hits_at_")))


# --------------------------------------------------------------------------- shared checks


def _check_lengths(**sequences: Sequence[Any]) -> None:
    lengths = {name: len(values) for name, values in sequences.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ThemisInputError(f"sequences must have one entry per item, got lengths {listed}")


def _require_columns(df: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise ThemisInputError(
            f"{where}: missing column(s) {', '.join(missing)} (have {', '.join(map(str, df.columns))})"
        )
