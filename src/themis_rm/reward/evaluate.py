"""How well a reward picks correct code: composite variants on rerank lists whose hidden tests are the oracle.

A rerank list (``themis data mutate``'s ``heldout_rerank.jsonl``: the reference and verified mutants, with every
completion's pass counts over all the problem's tests and the tests themselves) becomes a group whose *visible*
tests are the first ``visible_fraction`` of them, as an RL reward would see public tests; the oracle is the
verdict over all tests. For each variant (reward model alone, visible tests alone, static analysis alone, the
composite, the composite with a cascade) this reports Hits@1 (the top-scored completion passes every test; ties
split evenly, so a reward that cannot tell completions apart scores chance), Spearman with the oracle pass rate,
sandboxed runs per list and wall time. Used by ``benchmarks/bench_composite.py`` and the demo's ``reward`` step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from themis_rm.bench.best_of_n import expected_top_pass
from themis_rm.bench.metrics import pass_rates
from themis_rm.errors import ThemisInputError
from themis_rm.readers import read_records
from themis_rm.reward.composite import CompositeReward
from themis_rm.reward.groups import RewardGroup
from themis_rm.reward.spec import load_reward_spec

RM = {"kind": "rm", "criteria": "correctness", "normalize": "group_z"}
TESTS = {"kind": "tests", "weight": 2.0, "gate": {"below": 1.0, "floor": -3.0}}
STATIC = [
    {"kind": "static", "analyzer": "ruff", "normalize": "rank", "weight": 0.1},
    {"kind": "static", "analyzer": "bandit", "weight": 0.1},
]
VARIANTS: dict[str, dict] = {
    "rm": {"components": [RM]},
    "tests": {"components": [{"kind": "tests"}]},
    "static": {"components": [{**c, "weight": 1.0} for c in STATIC]},
    "composite": {"components": [RM, TESTS, *STATIC]},
    "composite+cascade": {"components": [RM, TESTS, *STATIC], "cascade": {"top_k": 2}},
}


@dataclass(frozen=True)
class OracleLists:
    groups: list[RewardGroup]  # visible tests only
    passed: list[list[bool]]  # the oracle: every test
    pass_rates: list[np.ndarray]


def load_oracle_lists(path: str | Path, visible_fraction: float = 0.5) -> OracleLists:
    """Rerank rows with tests as groups with their visible tests, and the all-tests oracle."""
    groups, passed, rates = [], [], []
    for row, record in read_records(path):
        if not record.get("tests") or not record.get("entry_point"):
            raise ThemisInputError(
                f"{path}:{row}: a rerank list without 'tests'/'entry_point'; lists from `themis data mutate` carry "
                "them (re-run it if these predate that)"
            )
        tests = list(record["tests"])
        visible = tests[: max(1, math.ceil(len(tests) * visible_fraction))]
        groups.append(
            RewardGroup(
                id=str(record["id"]),
                prompt=record["description"],
                completions=list(record["completions"]),
                language=record.get("language") or "Python",
                entry_point=record["entry_point"],
                tests=visible,
                test_preamble=record.get("test_preamble") or "",
                reference=record.get("reference"),
            )
        )
        passed.append([bool(v) for v in record["final_verdict"]])
        rates.append(pass_rates(record["num_passed"], record["num_failed"]))
    return OracleLists(groups, passed, rates)


def evaluate_variants(
    lists: OracleLists,
    variants: Mapping[str, Mapping] = VARIANTS,
    *,
    model: str | None = None,
    prompt_pack: str | None = None,
    scorer=None,
    execution: Mapping | None = None,
) -> dict[str, dict]:
    """Each variant's Hits@1, Spearman, runs per list and seconds on ``lists`` (one shared scorer for all)."""
    results = {}
    for name, variant in variants.items():
        uses_rm = any(c["kind"] == "rm" for c in variant["components"])
        rm = {"rm": {"model": model, "device": "cpu", "prompt_pack": prompt_pack}} if uses_rm else {}
        spec = load_reward_spec({**variant, **rm, "execution": dict(execution or {})})
        reward = CompositeReward(spec, scorer=scorer if spec.of_kind("rm") else None)
        if spec.of_kind("rm") and scorer is None:
            scorer = reward.scorer  # loaded once, shared by the later variants
        started = time.perf_counter()
        scored = reward.score(lists.groups)
        seconds = time.perf_counter() - started
        results[name] = _metrics(scored, lists, seconds)
    return results


def _metrics(scored: Sequence, lists: OracleLists, seconds: float) -> dict:
    hits, rhos = [], []
    for result, passed, rates in zip(scored, lists.passed, lists.pass_rates, strict=True):
        if any(passed):
            hits.append(expected_top_pass(result.rewards, passed, len(passed)))
        if len(set(result.rewards)) > 1 and len(set(rates.tolist())) > 1:
            rhos.append(float(spearmanr(result.rewards, rates).statistic))
    n = len(scored)
    return {
        "hits_at_1": round(float(np.mean(hits)), 4) if hits else None,
        "spearman_mean": round(float(np.mean(rhos)), 4) if rhos else None,
        "runs_per_list": round(sum(r.executions for r in scored) / n, 3) if n else 0.0,
        "runs_saved_per_list": round(sum(r.executions_saved for r in scored) / n, 3) if n else 0.0,
        "seconds": round(seconds, 2),
        "n_lists": n,
    }
