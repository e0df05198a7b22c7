"""Build the report: load the runs, bootstrap their intervals, draw the plots, write Markdown and HTML."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from themis_rm.atomic import write_text_atomic
from themis_rm.bench.metrics import bootstrap_mean_ci
from themis_rm.bench.report.best_of_n import best_of_n_table, load_rerank_runs, plot_best_of_n
from themis_rm.bench.report.diagnostics import diagnostics_plots
from themis_rm.bench.report.load import Run, disambiguate_labels, load_references, load_run, run_slugs
from themis_rm.bench.report.plots import Plot, plot_comparison, plot_run
from themis_rm.bench.report.render import (
    Report,
    comparison_table,
    language_table,
    method_note,
    render_html,
    render_markdown,
    size_warning,
)
from themis_rm.errors import ThemisInputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`build_report` wrote the report."""

    markdown: Path
    html: Path
    pngs: list[Path]


def build_report(
    run_dirs: Sequence[Path],
    output: Path,
    *,
    reference_dir: Path | None = None,
    rerank_dirs: Sequence[Path] = (),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> ReportPaths:
    """Write ``report.md``, ``report.html`` and the PNG plots for ``run_dirs`` into ``output``.

    Each run gets an aspect × language accuracy heatmap, score-difference histograms per aspect, per-subset
    accuracy bars, when it was run with ``--perturb`` a robustness table and plot, and when it has a
    ``diagnostics.json`` (every ``themis bench`` run) its diagnostics tables and plots; all rows share a comparison
    table (by aspect), a per-language table and an overall-accuracy chart with 95% CI error bars. Rows over very
    different numbers of pairs get a warning above the tables.
    With ``reference_dir``, each subdirectory holding ``results.json`` and ``scores.parquet`` is added as a
    "(reference)" row, except one that is itself among ``run_dirs``. Each of ``rerank_dirs`` (a ``themis rerank``
    output) adds its best-of-N table and a line to the best-of-N plot.

    Raises:
        ThemisInputError: a run directory is missing or lacks ``results.json``/``scores.parquet``; a
            ``run.json`` is not a JSON object or names an unknown tie policy; ``reference_dir`` holds no run; a
            rerank directory has no ``best_of_n.json``.
    """
    runs = [load_run(Path(path), reference=False) for path in run_dirs]
    if reference_dir is not None:
        runs += load_references(Path(reference_dir), skip={run.directory for run in runs})
    reranks = load_rerank_runs(list(rerank_dirs))
    if not runs and not reranks:
        raise ThemisInputError(
            "build_report: no run directories, no reference_dir and no rerank directories (nothing to report)"
        )
    disambiguate_labels(runs)
    for run in runs:  # one seed for every row: a run's CI does not depend on which runs sit beside it
        run.overall_ci = bootstrap_mean_ci(run.credit.to_numpy(), n_bootstrap, seed)
        for column, cis in (("aspect", run.aspect_ci), ("language", run.language_ci)):
            for value, credit in run.credit.groupby(run.scores[column], sort=True):
                cis[str(value)] = bootstrap_mean_ci(credit.to_numpy(), n_bootstrap, seed)
    logger.info("bootstrapped %d rows (%d resamples, seed %d)", len(runs), n_bootstrap, seed)

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    comparison = plot_comparison(runs, output / "comparison.png") if runs else None
    run_plots = [
        (run, plot_run(run, output, slug, n_bootstrap, seed) + diagnostics_plots(run, output, slug))
        for run, slug in run_slugs(runs)
    ]
    best_of_n = plot_best_of_n(reranks, output / "best-of-n.png") if reranks else None
    logger.info("wrote %d plots to %s", len(_pngs(comparison, run_plots, best_of_n)), output)

    warnings = [warning] if runs and (warning := size_warning(runs)) else []
    for text in warnings:
        logger.warning("%s", text)
    tables = [comparison_table(runs), language_table(runs)] if runs else []
    report = Report(
        runs,
        tables,
        comparison,
        run_plots,
        method_note(n_bootstrap, seed),
        warnings,
        rerank_tables=[best_of_n_table(rerank) for rerank in reranks],
        best_of_n=best_of_n,
    )
    markdown = output / "report.md"
    write_text_atomic(markdown, render_markdown(report))
    html_path = output / "report.html"
    write_text_atomic(html_path, render_html(report))
    logger.info("wrote %s and %s", markdown, html_path)
    return ReportPaths(markdown=markdown, html=html_path, pngs=_pngs(comparison, run_plots, best_of_n))


def _pngs(comparison: Plot | None, run_plots: list[tuple[Run, list[Plot]]], best_of_n: Plot | None) -> list[Path]:
    plots = [comparison, *(plot for _, plots in run_plots for plot in plots), best_of_n]
    return [plot.path for plot in plots if plot is not None]
