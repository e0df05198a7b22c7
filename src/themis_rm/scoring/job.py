"""``themis score``: read pairs or responses, score them under the chosen criteria, write JSONL/JSON with settings.

Pairs files (``chosen``/``rejected`` columns) give one row per pair with both rewards; other files give one row
per response. Every output row carries ``id``, the scores, truncation counts, ``criteria`` and ``model``; the full
settings (model revision, dtype, device, max_length, prompt pack hash, versions, timing) go in the JSON output
itself or, for JSONL, in ``<output>.settings.json`` beside it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from themis_rm.atomic import atomic_path, refuse_overwrite, write_text_atomic
from themis_rm.config import validate_config
from themis_rm.errors import ThemisInputError
from themis_rm.packs import resolve_pack
from themis_rm.pairs import (
    LoadedRows,
    ScoreRequest,
    check_unique_ids,
    input_kind,
    load_pairs,
    load_responses,
    skipped_rows,
)
from themis_rm.scoring.config import ScoreConfig
from themis_rm.scoring.scorer import ASPECT, Scorer, require_aspects

logger = logging.getLogger(__name__)

ASPECT_REQUIRED_BY = "--criterion aspect needs every row's aspect; use --criterion full/none or add the field"


@dataclass(frozen=True)
class ScoreSummary:
    """Counts of one run; ``truncated`` counts rows with any cut, ``prompt_truncated`` those whose prompt was cut."""

    rows: int
    sequences: int
    skipped: int
    truncated: int
    seconds: float
    output: Path
    prompt_truncated: int = 0
    pair_accuracy: float | None = None  # pairs only: share with chosen > rejected (a tie is wrong, as in bench)
    ties: int | None = None  # pairs only: exact chosen == rejected

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def run_score(
    config: ScoreConfig,
    *,
    on_loaded: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoreSummary:
    """Score ``config.input`` and write ``config.output``.

    Args:
        on_loaded: called with the number of sequences to score, once the input is read.
        progress: called with the number of sequences finished after each batch.

    Raises:
        ThemisInputError: the config is invalid (every problem listed) or the input has no valid row.
    """
    validate_config(config)
    refuse_overwrite(
        {"--output": config.output, "its settings file": settings_path(config.output)}, {"--input": config.input}
    )
    needs_pack = config.criterion.strip().lower() != "none" or config.criteria_file is not None
    pack = resolve_pack(config.prompt_pack, config.criteria_file) if needs_pack else None
    by_aspect = config.criterion == ASPECT
    resolve_aspect = pack.resolve_one if pack is not None and by_aspect else None
    read = {"split": config.split}
    kind = input_kind(config.input, config.fields, **read)
    loader = load_pairs if kind == "pairs" else load_responses
    loaded: LoadedRows = loader(
        config.input,
        config.fields,
        skip_invalid=config.skip_invalid,
        resolve_aspect=resolve_aspect,
        aspect_required_by=ASPECT_REQUIRED_BY if by_aspect else None,
        **read,
    )
    if not loaded.rows:
        raise ThemisInputError(f"{config.input}: no valid rows to score ({len(loaded.skipped)} skipped)")
    selected = loaded.rows[: config.limit] if config.limit else loaded.rows
    if kind == "pairs":
        check_unique_ids(selected, config.input)  # as bench: a pair is known by its id
    else:
        _warn_repeated_ids(selected, config.input)
    scorer = Scorer.from_job_config(config, pack)
    started = time.perf_counter()
    if kind == "pairs":
        if on_loaded:
            on_loaded(2 * len(selected))
        scores = scorer.score_pairs(selected, config.criterion, progress)
        rows = [
            {
                "id": p.id,
                "chosen_score": c,
                "rejected_score": r,
                "chosen_truncated_tokens": int(ct),
                "rejected_truncated_tokens": int(rt),
                "aspect": p.aspect,
                "language": p.language,
                "subset": p.subset,
            }
            for p, c, r, ct, rt in zip(
                selected,
                scores.chosen.tolist(),
                scores.rejected.tolist(),
                scores.chosen_truncated,
                scores.rejected_truncated,
                strict=True,
            )
        ]
        truncated, sequences = scores.truncated_pairs, 2 * len(rows)
        prompt_truncated = scores.prompt_truncated_pairs
        accuracy = float((scores.chosen > scores.rejected).mean())
        ties = int((scores.chosen == scores.rejected).sum())
    else:
        if on_loaded:
            on_loaded(len(selected))
        systems = _row_systems(scorer, selected, config.criterion)
        out = scorer.score_requests(
            [ScoreRequest(r.prompt, r.response, s) for r, s in zip(selected, systems, strict=True)],
            progress,
        )
        rows = [
            {"id": r.id, "score": s, "truncated_tokens": int(t), "aspect": r.aspect}
            for r, s, t in zip(selected, out.rewards.tolist(), out.truncated_tokens, strict=True)
        ]
        truncated, sequences = len(out.truncated_rows), len(rows)
        prompt_truncated = len(out.prompt_truncated_rows)
        accuracy = ties = None
    seconds = time.perf_counter() - started
    summary = ScoreSummary(
        len(rows), sequences, len(loaded.skipped), truncated, seconds, config.output, prompt_truncated, accuracy, ties
    )
    settings = {
        **scorer.settings(config.criterion),
        "input": str(config.input),
        "kind": kind,
        "fields": asdict(config.fields),
        "summary": {k: v for k, v in asdict(summary).items() if k != "output"},
        "skipped_rows": skipped_rows(loaded.skipped),
    }
    _write_output(config.output, rows, settings)
    return summary


def _warn_repeated_ids(rows, source) -> None:
    """Responses may share an id (rollouts of one prompt often carry the prompt's id); say so, as output rows are
    then told apart by their position only."""
    counts = Counter(row.id for row in rows)
    repeated = [i for i, n in counts.items() if n > 1]
    if repeated:
        logger.warning(
            "%s: %d ids are shared by several responses (first: %s); output rows follow the input order",
            source,
            len(repeated),
            repeated[:5],
        )


def _row_systems(scorer: Scorer, rows, criterion: str) -> list[str | None]:
    if criterion != ASPECT:
        return [scorer.system_prompt(criterion)] * len(rows)
    require_aspects(rows)
    return [scorer.system_prompt(row.aspect) for row in rows]


def _write_output(path: Path, rows: list[dict], settings: dict) -> None:
    stamp = {"criteria": settings.get("criteria", "none"), "model": settings["model"]}
    if path.suffix == ".json":
        write_text_atomic(path, json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n")
        return
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({**row, **stamp}) + "\n")
    write_text_atomic(settings_path(path), json.dumps(settings, indent=1) + "\n")


def settings_path(output: Path) -> Path:
    """Where the full settings of a JSONL output live."""
    return output.with_name(output.name + ".settings.json")
