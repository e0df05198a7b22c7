"""``themis rerank``: best-of-n reranking — does the reward pick a completion that passes its tests?

One valid input row (the reference rerank schema)::

    {"id": "q1", "description": "Write fib(n) ...", "completions": ["def fib(n): ...", "..."],
     "num_passed": [5, 0], "num_failed": [0, 5], "final_verdict": [true, false], "language": "Python"}

Every completion of every question is scored in one length-sorted engine pass; metrics follow the reference
definitions (Hits@K, Spearman with the pass rate, reward variance) averaged over questions. Outputs:
``per_question_scores.parquet``, ``rewards.parquet``, ``results.json`` (``{"overall": ...}``, strict JSON),
``best_of_n.json`` (exact best-of-N curves against oracle and random, overall and per language:
:mod:`themis_rm.bench.best_of_n`) and ``run.json``.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from themis_rm.atomic import atomic_path, write_text_atomic
from themis_rm.bench.best_of_n import BEST_OF_N_FILE, best_of_n, best_of_n_summary
from themis_rm.bench.config import RerankConfig
from themis_rm.bench.metrics import aggregate_rerank, rerank_question_metrics, write_results_json
from themis_rm.config import validate_config
from themis_rm.errors import ThemisInputError
from themis_rm.packs import resolve_pack
from themis_rm.pairs import LoadedRows, Prompt, RowValidator, ScoreRequest, load_rows
from themis_rm.scoring.scorer import Scorer

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RerankQuestion:
    """One question with its candidate completions and their test outcomes."""

    id: str
    prompt: Prompt
    completions: list[str]
    num_passed: list[int]
    num_failed: list[int]
    final_verdict: list[bool]
    language: str | None = None


_VERDICT_WORDS = {"true": True, "pass": True, "passed": True, "false": False, "fail": False, "failed": False}


def parse_verdict(value: object) -> bool | None:
    """A test verdict as a bool: ``True``/``False``, ``1``/``0``, or true/false/pass/fail/passed/failed in any case.

    Strict on purpose: ``bool("false")`` is True, so a loose cast would count failing completions as passing.

    Returns:
        The verdict, or None when ``value`` is none of these (the caller names the row and field).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _VERDICT_WORDS.get(value.strip().lower())
    return None


def _verdicts(v: RowValidator, values: list) -> list[bool]:
    verdicts = [parse_verdict(value) for value in values]
    for index, verdict in enumerate(verdicts):
        if verdict is None:
            reason = f"entry {index} is {values[index]!r}; use true/false, 1/0 or pass/fail"
            raise v.fail("final_verdict", reason)
    return verdicts


def _parse_question(v: RowValidator, prompt_field: str) -> RerankQuestion:
    completions = v.record.get("completions")
    if not isinstance(completions, list) or not completions:
        raise v.fail("completions", "must be a non-empty list of strings")
    if not all(isinstance(c, str) for c in completions):
        raise v.fail("completions", "must hold only strings")
    lists = {}
    for name in ("num_passed", "num_failed", "final_verdict"):
        value = v.record.get(name)
        if not isinstance(value, list) or len(value) != len(completions):
            raise v.fail(name, f"must be a list with one entry per completion ({len(completions)})")
        lists[name] = _verdicts(v, value) if name == "final_verdict" else [int(x) for x in value]
    return RerankQuestion(
        id=v.row_id("id"),
        prompt=v.prompt(prompt_field),
        completions=list(completions),
        language=v.text("language", required=False),
        **lists,
    )


def load_rerank_questions(
    source: str | Path, *, prompt_field: str = "description", skip_invalid: bool = False, **read_options
) -> LoadedRows:
    """Read and validate rerank questions; bad rows name file, row and field."""
    return load_rows(source, lambda v: _parse_question(v, prompt_field), skip_invalid, **read_options)


@dataclass(frozen=True)
class RerankResult:
    output: Path
    results: dict
    per_question: pd.DataFrame
    best_of_n: dict
    warnings: tuple[str, ...] = ()


def uninformative_ks(ks: tuple[int, ...], list_sizes: list[int]) -> list[str]:
    """A warning per K at or above every list's size: there Hits@K is 1.0 whenever any completion passes, so it
    measures the data, not the reward model (the default 5, 10 on lists of at most 5)."""
    longest = max(list_sizes)
    return [
        f"Hits@{k} is uninformative: no question has more than {longest} completions, so any passing completion "
        f"is a hit; use --k below {longest}"
        for k in ks
        if k >= longest
    ]


def run_rerank(
    config: RerankConfig,
    *,
    on_loaded: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RerankResult:
    """Score every completion, compute per-question and averaged metrics, write the outputs."""
    validate_config(config)
    started = time.perf_counter()
    questions: list[RerankQuestion] = load_rerank_questions(
        config.data, prompt_field=config.prompt_field, split=config.split, config=config.data_config
    ).rows
    if not questions:
        raise ThemisInputError(f"{config.data}: no rerank questions")
    questions = questions[: config.limit] if config.limit else questions
    warnings = uninformative_ks(config.ks, [len(q.completions) for q in questions])
    for warning in warnings:
        logger.warning(warning)
    wants_pack = config.criterion.strip().lower() != "none"
    pack = resolve_pack(config.prompt_pack, config.criteria_file) if wants_pack else None
    scorer = Scorer.from_job_config(config, pack)
    system = scorer.system_prompt(config.criterion)
    requests = [ScoreRequest(q.prompt, c, system) for q in questions for c in q.completions]
    if on_loaded:
        on_loaded(len(requests))
    out = scorer.score_requests(requests, progress)
    bounds = np.cumsum([0, *(len(q.completions) for q in questions)])
    rewards = [out.rewards[a:b] for a, b in itertools.pairwise(bounds)]
    rows = [
        {
            "id": q.id,
            "language": q.language,
            **rerank_question_metrics(r, q.num_passed, q.num_failed, q.final_verdict, ks=config.ks),
        }
        for q, r in zip(questions, rewards, strict=True)
    ]
    per_question = pd.DataFrame(rows).set_index("id")
    results = {"overall": aggregate_rerank(per_question)}
    config.output.mkdir(parents=True, exist_ok=True)
    with atomic_path(config.output / "per_question_scores.parquet") as tmp:
        per_question.to_parquet(tmp)
    with atomic_path(config.output / "rewards.parquet") as tmp:
        rewards_frame = pd.DataFrame({"id": [q.id for q in questions], "rewards": [r.tolist() for r in rewards]})
        rewards_frame.set_index("id").to_parquet(tmp)
    write_results_json(results, config.output / "results.json")
    curves = best_of_n(
        [r.tolist() for r in rewards],
        [q.final_verdict for q in questions],
        [q.language for q in questions],
        criterion=config.criterion,
    )
    write_text_atomic(config.output / BEST_OF_N_FILE, json.dumps(curves, indent=1) + "\n")
    run = {
        **scorer.settings(config.criterion),
        "data": config.data,
        "ks": list(config.ks),
        "warnings": warnings,
        "n_questions": len(questions),
        "n_completions": len(requests),
        "n_truncated": len(out.truncated_rows),
        "n_prompt_truncated": len(out.prompt_truncated_rows),
        "best_of_n": best_of_n_summary(curves),
        "wall_s": round(time.perf_counter() - started, 3),
    }
    write_text_atomic(config.output / "run.json", json.dumps(run, indent=1) + "\n")
    return RerankResult(config.output, results, per_question, curves, tuple(warnings))
