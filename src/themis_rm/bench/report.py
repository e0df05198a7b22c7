"""Render benchmark run directories into one Markdown and one self-contained HTML report, with PNG plots.

A run directory holds the reference-format ``results.json`` and ``scores.parquet`` and, optionally, our
``run.json`` (every key optional), e.g. ``{"model": "Themis-RM-8B", "dtype": "bf16", "ties": "wrong",
"pairs_per_s": 412.5}``. The model label is ``run.json["model"]``, else the directory name.

Point accuracies are the run's own ``results.json`` numbers; 95% confidence intervals come from a seeded
percentile bootstrap over pairs of the per-pair credit (the run's tie policy applied), so the table reproduces
the published figures and the intervals say how far they can be trusted.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from themis_rm.bench.metrics import TIE_POLICIES, nan_count, pair_credit, read_scores_parquet, tie_count
from themis_rm.errors import ThemisInputError

logger = logging.getLogger(__name__)

RUN_FILES = ("results.json", "scores.parquet")
CHANCE = 0.5
_DPI = 110
_MISSING = "—"


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`build_report` wrote the report."""

    markdown: Path
    html: Path
    pngs: list[Path]


@dataclass
class _Run:
    label: str
    directory: Path
    reference: bool
    results: dict[str, Any]
    scores: pd.DataFrame
    settings: dict[str, Any]
    credit: pd.Series = field(repr=False)
    overall_ci: tuple[float, float] = (math.nan, math.nan)
    aspect_ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.label} (reference)" if self.reference else self.label


@dataclass(frozen=True)
class _Cell:
    text: str
    note: str = ""  # the CI: after the text in Markdown, on its own small line in HTML


@dataclass(frozen=True)
class _Table:
    headers: list[str]
    rows: list[list[_Cell]]
    numeric: bool = True  # right-align every column after the first


@dataclass(frozen=True)
class _Plot:
    path: Path
    caption: str


@dataclass(frozen=True)
class _Report:
    """Everything both renderers show: the rows, the comparison table and chart, each own run's plots."""

    runs: list[_Run]
    table: _Table
    comparison: _Plot
    run_plots: list[tuple[_Run, list[_Plot]]]
    note: str


# --------------------------------------------------------------------------- public API


def build_report(
    run_dirs: Sequence[Path],
    output: Path,
    *,
    reference_dir: Path | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> ReportPaths:
    """Write ``report.md``, ``report.html`` and the PNG plots for ``run_dirs`` into ``output``.

    Each run gets an aspect × language accuracy heatmap, score-difference histograms per aspect and per-subset
    accuracy bars; all rows share a comparison table and an overall-accuracy chart with 95% CI error bars.
    With ``reference_dir``, each subdirectory holding ``results.json`` and ``scores.parquet`` is added as a
    "(reference)" row, except one that is itself among ``run_dirs``.

    Raises:
        ThemisInputError: a run directory is missing or lacks ``results.json``/``scores.parquet``; a
            ``run.json`` is not a JSON object or names an unknown tie policy; ``reference_dir`` holds no run.
    """
    runs = [_load_run(Path(path), reference=False) for path in run_dirs]
    if reference_dir is not None:
        runs += _load_references(Path(reference_dir), skip={run.directory for run in runs})
    if not runs:
        raise ThemisInputError("build_report: no run directories given and no reference_dir (nothing to report)")
    _disambiguate_labels(runs)
    for run in runs:  # one seed for every row: a run's CI does not depend on which runs sit beside it
        run.overall_ci = bootstrap_accuracy_ci(run.credit.to_numpy(), n_bootstrap, seed)
        for aspect, credit in run.credit.groupby(run.scores["aspect"], sort=True):
            run.aspect_ci[str(aspect)] = bootstrap_accuracy_ci(credit.to_numpy(), n_bootstrap, seed)
    logger.info("bootstrapped %d rows (%d resamples, seed %d)", len(runs), n_bootstrap, seed)

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    comparison = _plot_comparison(runs, output / "comparison.png")
    run_plots = [(run, _plot_run(run, output, slug, n_bootstrap, seed)) for run, slug in _slugs(runs)]
    logger.info("wrote %d plots to %s", 1 + 3 * len(run_plots), output)

    report = _Report(runs, _comparison_table(runs), comparison, run_plots, _method_note(n_bootstrap, seed))
    markdown = output / "report.md"
    markdown.write_text(_render_markdown(report), encoding="utf-8")
    html_path = output / "report.html"
    html_path.write_text(_render_html(report), encoding="utf-8")
    logger.info("wrote %s and %s", markdown, html_path)
    pngs = [comparison.path] + [plot.path for _, plots in run_plots for plot in plots]
    return ReportPaths(markdown=markdown, html=html_path, pngs=pngs)


def bootstrap_accuracy_ci(correct: np.ndarray, n_bootstrap: int, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of the mean per-pair credit (1 correct, 0 wrong, 0.5 a half-credit tie).

    Resampling n pairs with replacement only matters through how often each distinct credit value is drawn,
    so the draw is one multinomial over the distinct values: the same distribution as resampling indices, in
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
        raise ThemisInputError("bootstrap_accuracy_ci: per-pair credit contains NaN (score NaN pairs as 0 or 0.5)")
    distinct, counts = np.unique(values, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(values.size, counts / values.size, size=n_bootstrap)
    means = draws @ distinct / values.size
    low, high = np.quantile(means, [0.025, 0.975])
    return (float(low), float(high))


# --------------------------------------------------------------------------- loading


def _load_run(directory: Path, *, reference: bool) -> _Run:
    if not directory.is_dir():
        raise ThemisInputError(f"{directory}: run directory not found (expected results.json and scores.parquet)")
    missing = [name for name in RUN_FILES if not (directory / name).is_file()]
    if missing:
        raise ThemisInputError(
            f"{directory}: missing {' and '.join(missing)} (a run directory needs results.json and scores.parquet)"
        )
    results = _read_json_object(directory / "results.json")
    if not isinstance(results.get("overall"), dict):
        raise ThemisInputError(f"{directory / 'results.json'}: no 'overall' object (expected a bench results.json)")
    settings = _read_json_object(directory / "run.json") if (directory / "run.json").is_file() else {}
    scores = read_scores_parquet(directory / "scores.parquet")
    label = str(settings.get("model") or directory.name)
    credit = pair_credit(scores, _tie_policy(settings, directory))
    return _Run(label, directory.resolve(), reference, results, scores, settings, credit)


def _load_references(reference_dir: Path, skip: set[Path]) -> list[_Run]:
    if not reference_dir.is_dir():
        raise ThemisInputError(f"reference_dir {reference_dir}: not a directory")
    candidates = [
        path
        for path in sorted(reference_dir.iterdir())
        if path.is_dir() and all((path / name).is_file() for name in RUN_FILES)
    ]
    if not candidates:
        raise ThemisInputError(
            f"reference_dir {reference_dir}: no subdirectory holds both results.json and scores.parquet"
        )
    references = [_load_run(path, reference=True) for path in candidates if path.resolve() not in skip]
    return sorted(references, key=lambda run: -(run.results["overall"].get("accuracy") or 0.0))


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ThemisInputError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise ThemisInputError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _tie_policy(settings: dict[str, Any], directory: Path) -> str:
    """``run.json["ties"]`` when it is a policy string; a number there is a tie counter, not a policy."""
    ties = settings.get("ties", "wrong")
    if not isinstance(ties, str):
        return "wrong"
    if ties not in TIE_POLICIES:
        raise ThemisInputError(f"{directory / 'run.json'}: 'ties' must be 'wrong' or 'half', got {ties!r}")
    return ties


def _disambiguate_labels(runs: list[_Run]) -> None:
    """Two rows with one label (same model, other settings) get their directory name appended."""
    names = [run.name for run in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.label = f"{run.label} [{run.directory.name}]"


def _slugs(runs: list[_Run]) -> list[tuple[_Run, str]]:
    own = [run for run in runs if not run.reference]
    return [(run, f"run{i + 1}-{re.sub(r'[^A-Za-z0-9.]+', '-', run.label).strip('-')}") for i, run in enumerate(own)]


# --------------------------------------------------------------------------- tables


def _pct(value: float | None) -> str:
    return _MISSING if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _ci(bounds: tuple[float, float] | None) -> str:
    if bounds is None or math.isnan(bounds[0]):
        return ""
    return f"[{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]"


def _comparison_table(runs: list[_Run]) -> _Table:
    aspects = sorted({aspect for run in runs for aspect in run.results.get("by_aspect", {})})
    headers = ["Model", "N", "Accuracy % [95% CI]", *aspects, "Ties", "NaN", "Pairs/s"]
    rows = []
    for run in runs:
        by_aspect = run.results.get("by_aspect", {})
        pairs_per_s = run.settings.get("pairs_per_s")
        row = [
            _Cell(run.name),
            _Cell(f"{run.results['overall'].get('total_examples', len(run.scores)):,}"),
            _Cell(_pct(run.results["overall"].get("accuracy")), _ci(run.overall_ci)),
            *[_Cell(_pct(by_aspect.get(a, {}).get("accuracy")), _ci(run.aspect_ci.get(a))) for a in aspects],
            _Cell(f"{tie_count(run.scores):,}"),
            _Cell(f"{nan_count(run.scores):,}"),
            _Cell(f"{pairs_per_s:,.1f}" if isinstance(pairs_per_s, int | float) else _MISSING),
        ]
        rows.append(row)
    return _Table(headers, rows)


def _settings_table(run: _Run) -> _Table:
    rows = [[_Cell("directory"), _Cell(str(run.directory))]]
    for key, value in run.settings.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        rows.append([_Cell(str(key)), _Cell(text if len(text) <= 120 else text[:117] + "...")])
    return _Table(["Setting", "Value"], rows, numeric=False)


# --------------------------------------------------------------------------- plots


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas, explicitly: no pyplot, no global backend state
    return figure


def _save(figure: Figure, path: Path, caption: str) -> _Plot:
    figure.savefig(path, format="png", dpi=_DPI)
    return _Plot(path, caption)


def _plot_run(run: _Run, output: Path, slug: str, n_bootstrap: int, seed: int) -> list[_Plot]:
    return [
        _plot_heatmap(run, output / f"{slug}-aspect-language.png"),
        _plot_score_diff(run, output / f"{slug}-score-diff.png"),
        _plot_subsets(run, output / f"{slug}-subsets.png", n_bootstrap, seed),
    ]


def _plot_comparison(runs: list[_Run], path: Path) -> _Plot:
    accuracy = np.array([run.results["overall"].get("accuracy") or math.nan for run in runs]) * 100
    low = np.array([run.overall_ci[0] for run in runs]) * 100
    high = np.array([run.overall_ci[1] for run in runs]) * 100
    figure = _new_figure(9, max(2.0, 1.2 + 0.45 * len(runs)))
    ax = figure.add_subplot()
    y = np.arange(len(runs))[::-1]
    colors = ["#9aa5b1" if run.reference else "#2f6fb0" for run in runs]
    errors = np.nan_to_num(np.vstack([accuracy - low, high - accuracy]))
    ax.barh(y, accuracy, xerr=errors, color=colors, capsize=4, error_kw={"elinewidth": 1.2})
    for yi, value, top in zip(y, accuracy, high, strict=True):
        ax.text(np.nanmax([value, top]) + 1, yi, f"{value:.2f}", va="center", fontsize=9)
    ax.set_yticks(y, [run.name for run in runs])
    ax.axvline(100 * CHANCE, color="#555", linestyle=":", linewidth=1)
    ax.set_xlim(0, 100)
    ax.set_xlabel("overall accuracy % (bars: 95% bootstrap CI; dotted: chance)")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(figure, path, "Overall accuracy with 95% bootstrap confidence intervals")


def _plot_heatmap(run: _Run, path: Path) -> _Plot:
    grouped = run.credit.groupby([run.scores["aspect"], run.scores["language"]]).agg(["mean", "count"])
    accuracy = grouped["mean"].unstack().sort_index().sort_index(axis=1)
    counts = grouped["count"].unstack().reindex_like(accuracy).fillna(0).astype(int)
    figure = _new_figure(max(6.0, 1.6 + 1.05 * accuracy.shape[1]), max(2.6, 1.0 + 0.62 * accuracy.shape[0]))
    ax = figure.add_subplot()
    cmap = colormaps["RdYlGn"].with_extremes(bad="#e6e6e6")
    percent = 100 * accuracy.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(percent), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(percent):
        if math.isnan(value):
            ax.text(j, i, _MISSING, ha="center", va="center", color="#777")
            continue
        color = "white" if abs(value - 100 * CHANCE) > 33 else "black"
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", color=color, fontsize=10, weight="bold")
        ax.text(j, i + 0.3, f"n={counts.iat[i, j]:,}", ha="center", va="center", color=color, fontsize=7)
    ax.set_xticks(range(accuracy.shape[1]), accuracy.columns, rotation=30, ha="right")
    ax.set_yticks(range(accuracy.shape[0]), accuracy.index)
    ax.set_title(f"{run.name}: accuracy % by aspect × language", loc="left", fontsize=11)
    figure.colorbar(image, ax=ax, fraction=0.03, label="accuracy %")
    return _save(figure, path, "Accuracy (%) by aspect and language; n = pairs per cell, grey = no pairs")


def _plot_score_diff(run: _Run, path: Path) -> _Plot:
    diff = run.scores["score_diff"].to_numpy(dtype=float)
    finite = diff[np.isfinite(diff)]
    low, high = np.percentile(finite, [0.5, 99.5]) if finite.size else (-1.0, 1.0)
    bins = _bins_split_at_zero(min(low, -1e-9), max(high, 1e-9))
    aspects = sorted(run.scores["aspect"].dropna().unique())
    ncols = min(3, max(len(aspects), 1))
    figure = _new_figure(max(7.0, 4.2 * ncols), 2.7 * max(math.ceil(len(aspects) / ncols), 1))
    axes = figure.subplots(max(math.ceil(len(aspects) / ncols), 1), ncols, squeeze=False, sharex=True)
    for ax, aspect in zip(axes.flat, aspects, strict=False):
        values = run.scores.loc[run.scores["aspect"] == aspect, "score_diff"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        ties = int((values == 0).sum())
        _, _, patches = ax.hist(np.clip(values[values != 0], bins[0], bins[-1]), bins=bins)
        for patch, left in zip(patches, bins[:-1], strict=True):
            patch.set_facecolor("#2e9d5b" if left >= 0 else "#cc4c4c")
        ax.axvline(0, color="black", linewidth=1)
        ax.set_title(f"{aspect}\nn={len(values):,}" + (f", {ties:,} ties not drawn" if ties else ""), fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[len(aspects) :]:
        ax.set_visible(False)
    figure.suptitle(f"{run.name}: chosen − rejected score", x=0.01, ha="left", fontsize=11)
    figure.supxlabel("score difference (clipped to the 0.5–99.5 percentile range; NaN pairs left out)", fontsize=9)
    return _save(figure, path, "Score difference (chosen − rejected) per aspect; green: chosen scored higher")


def _bins_split_at_zero(low: float, high: float, n_bins: int = 40) -> np.ndarray:
    """About ``n_bins`` equal-width bins over [low, high] with 0 as an edge, so no bin mixes wins and losses."""
    n_low = min(max(round(n_bins * -low / (high - low)), 1), n_bins - 1)
    return np.concatenate([np.linspace(low, 0, n_low + 1), np.linspace(0, high, n_bins - n_low + 1)[1:]])


def _plot_subsets(run: _Run, path: Path, n_bootstrap: int, seed: int) -> _Plot:
    grouped = run.credit.groupby(run.scores["subset"], sort=True)
    subsets = [str(name) for name, _ in grouped]
    accuracy = grouped.mean().to_numpy() * 100
    counts = grouped.size().to_numpy()
    ci = np.array([bootstrap_accuracy_ci(group.to_numpy(), n_bootstrap, seed) for _, group in grouped])
    order = np.argsort(accuracy)
    figure = _new_figure(9, max(2.0, 1.0 + 0.32 * len(subsets)))
    ax = figure.add_subplot()
    y = np.arange(len(subsets))
    errors = np.vstack([accuracy[order] - 100 * ci[order, 0], 100 * ci[order, 1] - accuracy[order]])
    ax.barh(y, accuracy[order], xerr=errors, color="#2f6fb0", capsize=2, error_kw={"elinewidth": 0.8})
    for yi, value in zip(y, accuracy[order], strict=True):
        ax.text(1, yi, f"{value:.1f}", va="center", color="white", fontsize=7.5, weight="bold")
    ax.set_yticks(y, [f"{subsets[i]} (n={counts[i]:,})" for i in order], fontsize=8)
    overall = 100 * (run.results["overall"].get("accuracy") or math.nan)
    ax.axvline(overall, color="#2e9d5b", linestyle="--", linewidth=1, label=f"overall {overall:.2f}")
    ax.axvline(100 * CHANCE, color="#555", linestyle=":", linewidth=1, label="chance")
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy % (bars: 95% bootstrap CI)")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(f"{run.name}: accuracy by subset", loc="left", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(figure, path, "Accuracy per subset, highest at the top, with 95% bootstrap CIs")


# --------------------------------------------------------------------------- Markdown and HTML


def _method_note(n_bootstrap: int, seed: int) -> str:
    return (
        f"Accuracy is the run's own results.json value; brackets give a 95% percentile-bootstrap CI over pairs "
        f"({n_bootstrap} resamples, seed {seed}). Ties: pairs with chosen == rejected; NaN: pairs with a missing "
        f"score. Both count as wrong, except that a tie earns 0.5 when the run's tie policy (run.json 'ties') is "
        f"'half'; a NaN pair is wrong under every policy."
    )


def _markdown_table(table: _Table) -> str:
    def cell(value: _Cell) -> str:
        return f"{value.text} {value.note}".strip().replace("|", "\\|")

    rule = ["---"] + ["---:" if table.numeric else "---"] * (len(table.headers) - 1)
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _render_markdown(report: _Report) -> str:
    parts = ["# CodeRewardBench report", "", _markdown_table(report.table), "", report.note]
    parts += ["", f"![{report.comparison.caption}]({report.comparison.path.name})"]
    for run, plots in report.run_plots:
        parts += ["", f"## {run.name}", "", _markdown_table(_settings_table(run))]
        parts += [line for plot in plots for line in ("", f"![{plot.caption}]({plot.path.name})")]
    return "\n".join(parts).rstrip() + "\n"


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0;
       background: #f6f8fa; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 10px; border-top: 1px solid #d0d7de;
     padding-top: 20px; }
p.note { color: #57606a; font-size: 13px; max-width: 900px; }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; font-size: 14px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13.5px; }
th, td { border: 1px solid #d0d7de; padding: 5px 9px; vertical-align: top; }
th { background: #eef1f4; text-align: center; font-weight: 600; }
td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:first-child { text-align: left; font-weight: 600; }
tr:nth-child(even) td { background: #f8f9fb; }
tr.own + tr.reference td { border-top: 2px solid #8c959f; }
tr.reference td { color: #57606a; } tr.reference td:first-child { font-weight: 400; font-style: italic; }
td .ci { display: block; color: #6e7781; font-size: 11.5px; }
table.settings td { text-align: left; white-space: normal; }
figure { margin: 14px 0 22px; } figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 13px; margin-top: 4px; }
"""


def _html_table(table: _Table, reference_rows: list[bool] | None = None) -> str:
    header = "".join(f"<th>{html.escape(name).replace('_', '_<wbr>')}</th>" for name in table.headers)
    body = []
    for index, row in enumerate(table.rows):
        cells = "".join(f"<td>{html.escape(c.text)}{_html_note(c.note)}</td>" for c in row)
        reference = reference_rows is not None and reference_rows[index]
        body.append(f'<tr class="{"reference" if reference else "own"}">{cells}</tr>')
    css = "numeric" if table.numeric else "settings"
    return f'<table class="{css}"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _html_note(note: str) -> str:
    return f'<span class="ci">{html.escape(note)}</span>' if note else ""


def _html_figure(plot: _Plot) -> str:
    data = base64.b64encode(plot.path.read_bytes()).decode("ascii")
    alt = html.escape(plot.caption)
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'


def _render_html(report: _Report) -> str:
    nav = "".join(f'<a href="#run-{i + 1}">{html.escape(run.name)}</a>' for i, (run, _) in enumerate(report.run_plots))
    body = [
        "<h1>CodeRewardBench report</h1>",
        f"<nav>{nav}</nav>" if nav else "",
        _html_table(report.table, [run.reference for run in report.runs]),
        f'<p class="note">{html.escape(report.note)}</p>',
        _html_figure(report.comparison),
    ]
    for i, (run, plots) in enumerate(report.run_plots):
        body += [f'<h2 id="run-{i + 1}">{html.escape(run.name)}</h2>', _html_table(_settings_table(run))]
        body += [_html_figure(plot) for plot in plots]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>CodeRewardBench report</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(part for part in body if part) + "\n</main></body></html>\n"
    )
