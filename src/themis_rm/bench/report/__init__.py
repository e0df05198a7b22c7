"""Render benchmark run directories into one Markdown and one self-contained HTML report, with PNG plots.

A run directory holds the reference-format ``results.json`` and ``scores.parquet`` and, optionally, our
``run.json`` (every key optional), e.g. ``{"model": "Themis-RM-8B", "dtype": "bf16", "ties": "wrong",
"pairs_per_s": 412.5}``. The model label is ``run.json["model"]``, else the directory name.

Point accuracies are the run's own ``results.json`` numbers; 95% confidence intervals come from a seeded
percentile bootstrap over pairs of the per-pair credit (the run's tie policy applied), so the table reproduces
the published figures and the intervals say how far they can be trusted.

Modules: :mod:`~themis_rm.bench.report.load` (run directories), :mod:`~themis_rm.bench.report.plots` (PNGs),
:mod:`~themis_rm.bench.report.render` (Markdown and HTML), :mod:`~themis_rm.bench.report.build` (the job).
"""

from themis_rm.bench.report.build import ReportPaths, build_report

__all__ = ["ReportPaths", "build_report"]
