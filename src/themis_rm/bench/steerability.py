"""``themis bench --steerability``: does the criterion system prompt steer the reward model?

Themis claims that a system prompt naming one criterion makes the RM judge by that criterion. The reference never
measured it. Here every pair is scored under each single-criterion prompt of the pack, under ``Full`` and under no
prompt, giving an aspect x prompt accuracy matrix. An aspect's **diagonal advantage** is its accuracy under its own
criterion's prompt minus the mean accuracy under the other single-criterion prompts: 0 for a model that ignores
the prompt, positive when the prompt steers it the right way. Reported overall and per language.

A reward model scores the extra prompts through the prefix engine (each prompt's system block is computed once
per batch and kept), so ``tokens_computed`` per prompt is close to the response tokens alone; it is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from themis_rm.bench.diagnostics import credit
from themis_rm.criteria import PromptPack
from themis_rm.pairs import PreferencePair
from themis_rm.scoring.protocols import PairScorer

FULL, NONE = "Full", "none"


def steer_prompts(pack: PromptPack) -> list[str]:
    """The prompts every pair is scored under: each single criterion, then ``Full``, then none."""
    return [*pack.components, FULL, NONE]


def run_steerability(
    scorer: PairScorer, pairs: Sequence[PreferencePair], pack: PromptPack, ties: str = "wrong"
) -> dict[str, Any]:
    """Score ``pairs`` under every :func:`steer_prompts` prompt; the matrix, advantages and tokens computed."""
    prompts = steer_prompts(pack)
    credits: dict[str, np.ndarray] = {}
    tokens: dict[str, int | None] = {}
    for prompt in prompts:
        before = scorer.work_counters().get("tokens")
        scores = scorer.score_pairs(pairs, prompt.lower() if prompt in (FULL, NONE) else prompt)
        after = scorer.work_counters().get("tokens")
        credits[prompt] = credit(scores.chosen - scores.rejected, ties)
        tokens[prompt] = after - before if isinstance(before, int) and isinstance(after, int) else None
    report = steerability_matrix(pairs, credits, list(pack.components))
    languages = sorted({p.language for p in pairs if p.language})
    report["by_language"] = {
        language: steerability_matrix(
            [p for p in pairs if p.language == language],
            {k: v[[p.language == language for p in pairs]] for k, v in credits.items()},
            list(pack.components),
        )
        for language in languages
    }
    report["tokens_computed"] = tokens
    return report


def steerability_matrix(
    pairs: Sequence[PreferencePair], credits: dict[str, np.ndarray], criteria: Sequence[str]
) -> dict[str, Any]:
    """``matrix[aspect][prompt]``: mean credit of the aspect's pairs under the prompt; the diagonal advantage of
    each aspect that is a criterion, and their mean (weighted by nothing: each criterion counts once)."""
    aspects = pd.Series([p.aspect or NONE for p in pairs])
    matrix: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for aspect in sorted(set(aspects)):
        members = (aspects == aspect).to_numpy()
        counts[aspect] = int(members.sum())
        matrix[aspect] = {prompt: round(float(values[members].mean()), 4) for prompt, values in credits.items()}
    advantage = {}
    for aspect, row in matrix.items():
        if aspect not in criteria:
            continue
        others = [row[c] for c in criteria if c != aspect and c in row]
        advantage[aspect] = round(row[aspect] - float(np.mean(others)), 4) if others else None
    defined = [a for a in advantage.values() if a is not None]
    return {
        "prompts": list(credits),
        "matrix": matrix,
        "pairs": counts,
        "diagonal_advantage": advantage,
        "mean_diagonal_advantage": round(float(np.mean(defined)), 4) if defined else None,
    }
