"""``themis score``: score responses or pairs under chosen criteria, one option per :class:`ScoreConfig` field."""

from __future__ import annotations

from themis_rm.cli.base import console, fail, progress_bar
from themis_rm.cli.options import config_command
from themis_rm.scoring.config import ScoreConfig


def _score(config: ScoreConfig) -> None:
    """Score responses (or chosen and rejected of each pair) with a reward model under chosen criteria."""
    from themis_rm.scoring.job import run_score

    with progress_bar("scoring") as (set_total, advance):
        summary = run_score(config, on_loaded=set_total, progress=advance)
    console.print(
        f"scored {summary.rows} rows ({summary.sequences} sequences) in {summary.seconds:.1f} s: "
        f"{summary.rows_per_s:.1f} rows/s; truncated {summary.truncated} (prompt cut in {summary.prompt_truncated}), "
        f"skipped {summary.skipped} -> {summary.output}"
    )
    if summary.pair_accuracy is not None:
        console.print(
            f"pairwise accuracy {summary.pair_accuracy:.4f} (chosen > rejected; {summary.ties} ties, counted wrong)"
        )


score = config_command(ScoreConfig, _score, on_error=fail)
