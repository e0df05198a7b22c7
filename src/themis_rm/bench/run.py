"""``themis bench``: CodeRewardBench-style evaluation — dataset -> scores (checkpointed, resumable) -> results.

Outputs in ``--output``:

* ``scores.parquet`` and ``results.json`` exactly in the reference format (see :mod:`themis_rm.bench.metrics`);
* ``run.json``: everything else — model and revision, dtype, device, max_length, prompt mode and pack hash, tie
  policy and counts, NaNs, truncated pairs (``n_truncated_pairs``: any cut; ``n_prompt_truncated_pairs``: of
  those, pairs whose prompt end was cut), identical pairs (``n_identical_pairs``, ``identical_pair_ids``: the two
  sides reached the model as the same tokens; ``--identical drop``, the default, leaves them out of the results),
  engine paths used, versions, wall time, pairs/s;
* ``diagnostics.json``: null baselines, calibration, ROC-AUC, length bias and accuracy by edit size
  (:mod:`themis_rm.bench.diagnostics`); a null baseline that beats the model or passes 65% is also logged;
* ``scores.partial.jsonl``: one line per scored pair, appended and fsynced chunk by chunk. A killed run restarted
  with the same arguments reuses these lines (no pair lost, none counted twice); ``checkpoint.json`` holds the
  fingerprint of the settings — with the dtype and device the model actually loaded in, not ``auto`` — so a
  restart with different settings (say a bf16 GPU run resumed on a CPU in fp32) is refused instead of mixing;
* ``judge_raw.jsonl`` (``--adapter judge``): every raw judge answer, cut back to the checkpoint on resume.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from themis_rm.atomic import write_text_atomic
from themis_rm.bench.checkpoint import PARTIAL_FILE, Fingerprint, resume_scores, run_fingerprint
from themis_rm.bench.config import BenchConfig
from themis_rm.bench.diagnostics import DIAGNOSTICS_FILE, pair_diagnostics
from themis_rm.bench.metrics import (
    compile_results,
    nan_count,
    tie_count,
    write_results_json,
    write_scores_parquet,
)
from themis_rm.bench.perturb import parse_kinds
from themis_rm.bench.robustness import hack_suite_report, hack_suite_totals, pairs_frame, run_robustness
from themis_rm.bench.steerability import run_steerability
from themis_rm.config import validate_config
from themis_rm.criteria import PromptPack
from themis_rm.errors import ThemisInputError
from themis_rm.faults import crash_point
from themis_rm.packs import resolve_pack
from themis_rm.pairs import PreferencePair, check_unique_ids, load_pairs, skipped_rows
from themis_rm.provenance import file_sha256
from themis_rm.scoring.config import ASPECT
from themis_rm.scoring.judge import parse_score_range
from themis_rm.scoring.scorer import Scorer

logger = logging.getLogger(__name__)

RAW_FILE = "judge_raw.jsonl"
ASPECT_REQUIRED_BY = "--criterion aspect needs every pair's aspect; use --criterion full/none or add the field"


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C during scoring, with where the run stopped: still a ``KeyboardInterrupt`` for library callers."""

    def __init__(self, output: Path, checkpointed: int, total: int) -> None:
        super().__init__(output, checkpointed, total)
        self.output, self.checkpointed, self.total = output, checkpointed, total

    def __str__(self) -> str:
        return (
            f"interrupted: {self.checkpointed} of {self.total} pairs are checkpointed in "
            f"{self.output / PARTIAL_FILE}; run the same command again to resume from there "
            "(pairs scored after the last checkpoint are scored again)"
        )


@dataclass(frozen=True)
class BenchResult:
    output: Path
    results: dict
    run: dict


def select_pairs(pairs: list[PreferencePair], config: BenchConfig) -> list[PreferencePair]:
    """Apply ``--subset/--language/--aspect`` filters (each a set of allowed values, case-insensitive), then
    ``--limit``.

    Raises:
        ThemisInputError: a filter value that matches no pair, with the values the data has.
    """
    filters = {"subset": config.subsets, "language": config.languages, "aspect": config.aspects}
    allowed: dict[str, set[str]] = {}
    for name, values in filters.items():
        if not values:
            continue
        present = {getattr(p, name) for p in pairs if getattr(p, name) is not None}
        by_folded = {value.casefold(): value for value in present}
        unknown = [v for v in values if v.casefold() not in by_folded]
        if unknown:
            raise ThemisInputError(
                f"--{name} {', '.join(unknown)} matches no pair; the data has: {', '.join(sorted(present)) or 'none'}"
            )
        allowed[name] = {by_folded[v.casefold()] for v in values}
    chosen = [p for p in pairs if all(getattr(p, name) in keep for name, keep in allowed.items())]
    return chosen[: config.limit] if config.limit else chosen


def run_bench(
    config: BenchConfig,
    *,
    on_loaded: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> BenchResult:
    """Score every selected pair (resuming from a checkpoint in ``config.output``) and write the outputs.

    Args:
        on_loaded: called with the number of pairs still to score, before scoring starts.
        progress: called with the number of pairs finished after each chunk.
    """
    validate_config(config)
    started = time.perf_counter()
    wants_pack = config.criterion.strip().lower() != "none"
    needs_pack = wants_pack or config.steerability  # steerability scores every criterion prompt
    pack = resolve_pack(config.prompt_pack, config.criteria_file) if needs_pack else None
    by_aspect = config.criterion == ASPECT
    loaded = load_pairs(
        config.data,
        config.fields,
        resolve_aspect=pack.resolve_one if pack is not None and by_aspect else None,
        aspect_required_by=ASPECT_REQUIRED_BY if by_aspect else None,
        skip_invalid=config.skip_invalid,
        split=config.split,
        config=config.data_config,
    )
    if not loaded.rows:
        raise ThemisInputError(
            f"{config.data}: no pairs to score: "
            + (f"all {len(loaded.skipped)} rows are invalid" if loaded.skipped else "the file has no rows")
        )
    pairs = select_pairs(loaded.rows, config)
    if not pairs:
        raise ThemisInputError(
            f"{config.data}: no pairs left after the --subset/--language/--aspect/--limit filters "
            f"({len(loaded.rows)} read)"
        )
    check_unique_ids(pairs, config.data)
    config.output.mkdir(parents=True, exist_ok=True)
    scorer = _pair_scorer(config, pack)  # before the fingerprint: it records the dtype and device "auto" became
    fingerprint = run_fingerprint(config, pack if wants_pack else None, pairs, scorer)
    done = resume_scores(config.output, fingerprint)
    if config.adapter == "judge":
        scorer.keep_raw(set(done))
    pending = [p for p in pairs if p.id not in done]
    if on_loaded:
        on_loaded(len(pending))
    scoring_started = time.perf_counter()
    try:
        _score_pending(config, scorer, pending, done, progress)
    except KeyboardInterrupt as exc:
        raise BenchInterrupted(config.output, len(done), len(pairs)) from exc
    scoring_s = time.perf_counter() - scoring_started
    resumed = len(pairs) - len(pending)
    outcome = _Outcome(loaded.skipped, done, fingerprint, resumed, scoring_s, started)
    return _finish(config, scorer, pack, pairs, outcome)


def _score_pending(config, scorer, pending: list[PreferencePair], done: dict[str, dict], progress) -> None:
    """Score ``pending`` chunk by chunk, appending each chunk to the partial file (fsynced) and to ``done``."""
    with (config.output / PARTIAL_FILE).open("a", encoding="utf-8") as partial:
        for chunk in _length_sorted_chunks(pending, config.checkpoint_every):
            scores = scorer.score_pairs(chunk, config.criterion)
            for pair, c, r, ct, rt, pt, same in zip(
                chunk,
                scores.chosen.tolist(),
                scores.rejected.tolist(),
                scores.chosen_truncated.tolist(),
                scores.rejected_truncated.tolist(),
                scores.prompt_truncated.tolist(),
                scores.identical.tolist(),
                strict=True,
            ):
                record = {
                    "id": pair.id,
                    "chosen_score": c,
                    "rejected_score": r,
                    "truncated": bool(ct or rt),
                    "prompt_truncated": bool(pt),
                    "identical": bool(same),
                }
                partial.write(json.dumps(record) + "\n")
                done[pair.id] = record
            partial.flush()
            os.fsync(partial.fileno())
            crash_point("bench.pairs", len(done))  # THEMIS_CRASH_AT: resume tests die exactly here
            if progress:
                progress(len(chunk))


@dataclass(frozen=True)
class _Outcome:
    """What the scoring loop leaves for :func:`_finish`: skipped rows, every pair's record, and timings."""

    skipped: list
    done: dict[str, dict]
    fingerprint: Fingerprint
    resumed: int
    scoring_s: float
    started: float


def _finish(config, scorer, pack, pairs, outcome: _Outcome) -> BenchResult:
    done, resumed, scoring_s, started = outcome.done, outcome.resumed, outcome.scoring_s, outcome.started
    scored = [done[p.id] for p in pairs]  # every selected pair; the results may drop the identical ones
    identical = [r["id"] for r in scored if r.get("identical", False)]
    if identical and config.identical == "drop":
        pairs = _drop_identical(pairs, set(identical), config.data)
    records = [done[p.id] for p in pairs]
    frame = pairs_frame(pairs, [r["chosen_score"] for r in records], [r["rejected_score"] for r in records])
    results = compile_results(frame, ties=config.ties)
    robustness = None
    hack_suite = hack_suite_report() if config.perturb and config.hack_suite else None
    if config.perturb:
        robustness = run_robustness(
            scorer,
            pairs,
            results,
            kinds=parse_kinds(",".join(config.perturb)),
            seed=config.seed,
            prompt_mode=config.criterion,
            ties=config.ties,
            output=config.output,
            sandbox=hack_suite,
        )
    write_scores_parquet(frame, config.output / "scores.parquet")
    write_results_json(results, config.output / "results.json")
    diagnostics = pair_diagnostics(pairs, frame, ties=config.ties, seed=config.seed)
    if config.steerability:
        diagnostics["steerability"] = run_steerability(scorer, pairs, pack, config.ties)
    write_text_atomic(config.output / DIAGNOSTICS_FILE, json.dumps(diagnostics, indent=1) + "\n")
    _warn_flags(diagnostics["baselines"]["flags"])
    scored_now = len(scored) - resumed
    run = {
        **scorer.settings(config.criterion),
        "data": config.data,
        "data_sha256": file_sha256(config.data),
        "prompt_mode": config.criterion,
        "ties": config.ties,
        "n_ties": tie_count(frame),
        "n_nan": nan_count(frame),
        "n_pairs": len(pairs),
        "n_scored_pairs": len(scored),
        "identical": config.identical,
        "n_identical_pairs": len(identical),
        "identical_pair_ids": identical,
        "n_truncated_pairs": sum(r["truncated"] for r in scored),
        "n_prompt_truncated_pairs": sum(r.get("prompt_truncated", False) for r in scored),
        "resumed_pairs": resumed,
        "n_skipped_rows": len(outcome.skipped),
        "skipped_rows": skipped_rows(outcome.skipped),
        "filters": {
            "subsets": list(config.subsets),
            "languages": list(config.languages),
            "aspects": list(config.aspects),
            "limit": config.limit,
        },
        "fingerprint": outcome.fingerprint.sha256,
        "scoring_s": round(scoring_s, 3),
        "wall_s": round(time.perf_counter() - started, 3),
        "pairs_per_s": round(scored_now / scoring_s, 3) if scored_now and scoring_s > 0 else None,
        "work": scorer.work_counters(),
        "robustness": robustness,
        "sandbox_hack_suite": hack_suite_totals(hack_suite) if hack_suite else None,
        "diagnostics": {
            "file": DIAGNOSTICS_FILE,
            "accuracy_ci95": diagnostics["accuracy_ci95"],
            "ece": diagnostics["calibration"]["ece"],
            "roc_auc": diagnostics["roc_auc"],
            "baseline_flags": len(diagnostics["baselines"]["flags"]),
            "mean_diagonal_advantage": diagnostics.get("steerability", {}).get("mean_diagonal_advantage"),
        },
    }
    write_text_atomic(config.output / "run.json", json.dumps(run, indent=1) + "\n")
    logger.info("bench: %d pairs, accuracy %.4f", len(pairs), results["overall"]["accuracy"])
    return BenchResult(config.output, results, run)


def _warn_flags(flags: list[dict]) -> None:
    """Say where a rule that never reads the code does as well as the model (the subset may reward length)."""
    for flag in flags:
        where = " / ".join(x for x in (flag["aspect"], flag["language"]) if x) or "all pairs"
        logger.warning(
            "null baseline '%s' scores %.1f%% on %s (%d pairs; the model %.1f%%): %s",
            flag["baseline"],
            100 * flag["baseline_accuracy"],
            where,
            flag["count"],
            100 * (flag["model_accuracy"] or 0.0),
            " and ".join(flag["reasons"]),
        )


def _drop_identical(pairs: list[PreferencePair], identical: set[str], source: str) -> list[PreferencePair]:
    """The pairs whose two sides the model told apart; the others are counted in ``run.json`` and said here."""
    kept = [p for p in pairs if p.id not in identical]
    logger.warning(
        "%d of %d pairs reach the model with identical chosen and rejected tokens (equal texts, or --max-length cut "
        "the difference): dropped from the results and listed in run.json (--identical keep scores them as ties)",
        len(identical),
        len(pairs),
    )
    if not kept:
        raise ThemisInputError(f"{source}: every pair's chosen and rejected are identical as the model sees them")
    return kept


def _pair_scorer(config: BenchConfig, pack: PromptPack | None):
    """The reward model's :class:`Scorer`, or a generative judge behind the same face (``--adapter judge``)."""
    if config.adapter != "judge":
        return Scorer.from_job_config(config, pack)
    from themis_rm.scoring.judge import JudgeConfig
    from themis_rm.scoring.judge_pairs import JudgePairScorer

    if not config.judge_url:
        raise ThemisInputError("--adapter judge needs --judge-url (an OpenAI-compatible API root ending in /v1)")
    options = {
        "model": config.model,
        "base_url": config.judge_url,
        "parser": config.judge_parser,
        "concurrency": config.judge_concurrency,
        "temperature": config.judge_temperature,
        "seed": config.judge_seed,
        "max_tokens": config.judge_max_tokens,
        "score_range": parse_score_range(config.judge_score_range),
        "retries": config.judge_retries,
        "backoff_s": config.judge_backoff_s,
        "timeout_s": config.judge_timeout_s,
    }
    if config.judge_template:
        options["template"] = Path(config.judge_template).read_text(encoding="utf-8")
    return JudgePairScorer(JudgeConfig(**options), pack, config.output / RAW_FILE)


def _length_sorted_chunks(pairs: list[PreferencePair], size: int):
    """Chunks of similar-length pairs (characters as a proxy), so each chunk batches with little padding."""
    ordered = sorted(pairs, key=lambda p: -(len(str(p.prompt)) + max(len(p.chosen), len(p.rejected))))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]
