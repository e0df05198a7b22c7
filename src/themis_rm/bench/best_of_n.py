"""Best-of-N curves for rerank lists: how often the top-scored of N sampled candidates passes its tests.

A policy that samples N candidates and keeps the one the reward model scores highest passes as often as that
pick does. For a list of n scored candidates, the expectation over every N-subset has a closed form, so the
curve is exact (no Monte Carlo). Sort the candidates by reward into groups of equal reward, best first; ``m``
candidates score strictly above a group ``G`` of size ``g`` holding ``p_G`` passing candidates. ``G`` holds the
subset's top score exactly when the subset avoids the ``m`` better ones but not all of ``G``, and a tie is broken
uniformly, so

    E[pass of the pick | N] = sum_G [C(n - m, N) - C(n - m - g, N)] / C(n, N) * p_G / g

Without ties this is ``sum_k C(n - 1 - k, N - 1) / C(n, N) * pass_k`` over ranks ``k``; a NaN reward ranks last.
The bounds beside it: the oracle picks a passing candidate whenever the subset holds one,
``1 - C(n - p, N) / C(n, N)``, and a random pick passes with probability ``p / n`` at every N. A question adds a
point at N only if its list has at least N candidates (never a subset of a shorter list); each point reports how
many questions it averages and a percentile-bootstrap 95% CI over questions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from themis_rm.bench.metrics import bootstrap_mean_ci

BEST_OF_N_FILE = "best_of_n.json"
N_BOOTSTRAP = 1000
UNKNOWN_LANGUAGE = "unknown"


def expected_top_pass(rewards: Sequence[float], passed: Sequence[bool], n: int) -> float:
    """Exact expected pass of the top-rewarded candidate of a uniformly drawn ``n``-subset (ties broken at
    random, NaN rewards last)."""
    size = len(rewards)
    _check_size(size, n)
    keys = np.nan_to_num(np.asarray(rewards, dtype=np.float64), nan=-np.inf)
    passing = np.asarray(passed, dtype=bool)
    total = math.comb(size, n)
    expected, above = 0.0, 0
    for value in np.unique(keys)[::-1]:  # groups of equal reward, best first
        group = keys == value
        g = int(group.sum())
        p_top = (math.comb(size - above, n) - math.comb(size - above - g, n)) / total
        expected += p_top * int(passing[group].sum()) / g
        above += g
    return expected


def oracle_pass(passed: Sequence[bool], n: int) -> float:
    """Pass rate of a perfect picker over ``n``-subsets: the chance the subset holds a passing candidate."""
    size, p = len(passed), int(np.sum(passed))
    _check_size(size, n)
    return 1.0 - math.comb(size - p, n) / math.comb(size, n)


def random_pass(passed: Sequence[bool]) -> float:
    """Pass rate of a uniformly random pick: the list's share of passing candidates, whatever N."""
    return float(np.mean(np.asarray(passed, dtype=bool)))


def _check_size(size: int, n: int) -> None:
    if not 1 <= n <= size:
        raise ValueError(f"best-of-{n} needs a list of at least {n} candidates, got {size}")


def curve_sizes(list_sizes: Sequence[int]) -> list[int]:
    """N = 1, 2, 4, … up to the longest list, and the longest list itself."""
    longest = max(list_sizes)
    sizes = [2**k for k in range(longest.bit_length()) if 2**k <= longest]
    return sizes if sizes[-1] == longest else [*sizes, longest]


def best_of_n_curve(
    rewards: Sequence[Sequence[float]],
    passed: Sequence[Sequence[bool]],
    sizes: Sequence[int],
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, list]:
    """The model, oracle and random curves over questions at each N in ``sizes`` (one list per question).

    Returns:
        ``{"n", "n_questions", "model", "model_ci95", "oracle", "random"}``, one entry per N that at least one
        question's list is long enough for.
    """
    curve: dict[str, list] = {key: [] for key in ("n", "n_questions", "model", "model_ci95", "oracle", "random")}
    for n in sizes:
        eligible = [i for i, verdicts in enumerate(passed) if len(verdicts) >= n]
        if not eligible:
            continue
        model = np.array([expected_top_pass(rewards[i], passed[i], n) for i in eligible])
        low, high = bootstrap_mean_ci(model, n_bootstrap, seed)
        curve["n"].append(n)
        curve["n_questions"].append(len(eligible))
        curve["model"].append(_round(model.mean()))
        curve["model_ci95"].append([_round(low), _round(high)])
        curve["oracle"].append(_round(np.mean([oracle_pass(passed[i], n) for i in eligible])))
        curve["random"].append(_round(np.mean([random_pass(passed[i]) for i in eligible])))
    return curve


def best_of_n(
    rewards: Sequence[Sequence[float]],
    passed: Sequence[Sequence[bool]],
    languages: Sequence[str | None],
    *,
    criterion: str,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """``best_of_n.json``: the curves over all questions and per language, under the run's criterion."""
    sizes = curve_sizes([len(verdicts) for verdicts in passed])
    by_language: dict[str, list[int]] = {}
    for index, language in enumerate(languages):
        by_language.setdefault(language or UNKNOWN_LANGUAGE, []).append(index)
    return {
        "criterion": criterion,
        "passed_means": "final_verdict",
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "overall": best_of_n_curve(rewards, passed, sizes, n_bootstrap=n_bootstrap, seed=seed),
        "by_language": {
            language: best_of_n_curve(
                [rewards[i] for i in rows], [passed[i] for i in rows], sizes, n_bootstrap=n_bootstrap, seed=seed
            )
            for language, rows in sorted(by_language.items())
        },
    }


def best_of_n_summary(curves: dict[str, Any]) -> dict[str, list]:
    """The overall curve without its CIs, for ``run.json``."""
    overall = curves["overall"]
    return {key: overall[key] for key in ("n", "model", "oracle", "random")}


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)
