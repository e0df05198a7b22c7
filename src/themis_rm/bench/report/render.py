"""Render a report's tables and plots as Markdown and as one self-contained HTML page (PNGs inlined)."""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field

from themis_rm.bench.metrics import nan_count, tie_count
from themis_rm.bench.report.diagnostics import diagnostics_tables
from themis_rm.bench.report.load import MISSING, Run
from themis_rm.bench.report.plots import Plot
from themis_rm.bench.report.table import Cell, Table, pct


@dataclass(frozen=True)
class Report:
    """Everything both renderers show: the rows, the comparison table and chart, each own run's plots."""

    runs: list[Run]
    tables: list[Table]  # by aspect, then by language
    comparison: Plot | None  # None without bench runs (a report of rerank runs only)
    run_plots: list[tuple[Run, list[Plot]]]
    note: str
    warnings: list[str] = field(default_factory=list)
    rerank_tables: list[Table] = field(default_factory=list)  # one best-of-N table per rerank run
    best_of_n: Plot | None = None


def _ci(bounds: tuple[float, float] | None) -> str:
    if bounds is None or math.isnan(bounds[0]):
        return ""
    return f"[{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]"


BEST_OF_N_HEADING = "Best-of-N reranking"
SIZE_RATIO_WARNING = 2.0
"""Rows whose pair counts differ by more than this factor get a warning: their accuracies are not comparable."""


def size_warning(runs: list[Run]) -> str | None:
    """A warning when the rows were measured on very different numbers of pairs (say a 100-pair --limit run
    beside the 8,866-pair benchmark), naming the smallest and largest."""
    sizes = {run.name: _pair_count(run) for run in runs}
    smallest, largest = min(sizes, key=sizes.__getitem__), max(sizes, key=sizes.__getitem__)
    if sizes[smallest] * SIZE_RATIO_WARNING >= sizes[largest]:
        return None
    return (
        f"Warning: these rows are measured on very different numbers of pairs ({smallest}: {sizes[smallest]:,}; "
        f"{largest}: {sizes[largest]:,}). Their accuracies come from different pairs, so a gap between them is not "
        "a comparison of models; score every model on the same data (themis bench --data ...) to compare."
    )


def _pair_count(run: Run) -> int:
    return int(run.results["overall"].get("total_examples", len(run.scores)))


def language_table(runs: list[Run]) -> Table:
    """One row per run: accuracy with its CI in each language, and the number of pairs of each."""
    languages = sorted({language for run in runs for language in run.results.get("by_language", {})})
    rows = []
    for run in runs:
        by_language = run.results.get("by_language", {})
        cells = [
            Cell(pct(by_language[lang].get("accuracy")), _ci(run.language_ci.get(lang)))
            if lang in by_language
            else Cell(MISSING)
            for lang in languages
        ]
        rows.append([Cell(run.name), *cells])
    return Table(["Model", *languages], rows, title="Accuracy % by language [95% CI]")


def robustness_table(run: Run) -> Table | None:
    """One row per perturbation kind: the side it edits, accuracy, change from clean, unchanged pairs, and the
    change per aspect (percentage points); None for a run without ``--perturb``."""
    if not run.robustness:
        return None
    aspects = sorted({a for row in run.robustness.values() for a in row.get("by_aspect_drop", {})})
    rows = [[Cell("clean"), Cell(""), Cell(pct(run.results["overall"].get("accuracy"))), Cell(""), Cell("")]]
    rows[0] += [Cell("") for _ in aspects]
    for kind, row in sorted(run.robustness.items(), key=lambda item: -(item[1].get("drop") or 0.0)):
        by_aspect = row.get("by_aspect_drop", {})
        rows.append(
            [
                Cell(kind),
                Cell(str(row.get("side", MISSING))),
                Cell(pct(row.get("accuracy"))),
                Cell(_points(-row["drop"]) if row.get("drop") is not None else MISSING),
                Cell(f"{row.get('unchanged_pairs', MISSING):,}" if "unchanged_pairs" in row else MISSING),
                *[Cell(_points(-by_aspect[a]) if a in by_aspect else MISSING) for a in aspects],
            ]
        )
    headers = ["Perturbation", "Edits", "Accuracy %", "Change (points)", "Unchanged pairs", *aspects]
    return Table(headers, rows, title="Robustness: accuracy under each perturbation (largest drop first)")


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def comparison_table(runs: list[Run]) -> Table:
    """One row per run: N, accuracy with its CI, each aspect with its CI, ties, NaNs and pairs/s."""
    aspects = sorted({aspect for run in runs for aspect in run.results.get("by_aspect", {})})
    headers = ["Model", "N", "Accuracy % [95% CI]", *aspects, "Ties", "NaN", "Pairs/s"]
    rows = []
    for run in runs:
        by_aspect = run.results.get("by_aspect", {})
        pairs_per_s = run.settings.get("pairs_per_s")
        row = [
            Cell(run.name),
            Cell(f"{run.results['overall'].get('total_examples', len(run.scores)):,}"),
            Cell(pct(run.results["overall"].get("accuracy")), _ci(run.overall_ci)),
            *[Cell(pct(by_aspect.get(a, {}).get("accuracy")), _ci(run.aspect_ci.get(a))) for a in aspects],
            Cell(f"{tie_count(run.scores):,}"),
            Cell(f"{nan_count(run.scores):,}"),
            Cell(f"{pairs_per_s:,.1f}" if isinstance(pairs_per_s, int | float) else MISSING),
        ]
        rows.append(row)
    return Table(headers, rows, title="Accuracy % by aspect [95% CI]")


def run_tables(run: Run) -> list[Table]:
    """A run's own tables under its settings: robustness (with ``--perturb``), then its diagnostics."""
    robustness = robustness_table(run)
    return ([robustness] if robustness is not None else []) + diagnostics_tables(run)


TABLED_SETTINGS = ("robustness", "diagnostics")  # run.json keys shown as their own table, not as a settings cell


def settings_table(run: Run) -> Table:
    """A run's directory and ``run.json`` settings, long values cut at 120 characters."""
    rows = [[Cell("directory"), Cell(str(run.directory))]]
    for key, value in run.settings.items():
        if key in TABLED_SETTINGS:
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        rows.append([Cell(str(key)), Cell(text if len(text) <= 120 else text[:117] + "...")])
    return Table(["Setting", "Value"], rows, numeric=False)


def method_note(n_bootstrap: int, seed: int) -> str:
    """How the numbers were made (bootstrap, ties, NaN), shown under the comparison table."""
    return (
        f"Accuracy is the run's own results.json value; brackets give a 95% percentile-bootstrap CI over pairs "
        f"({n_bootstrap} resamples, seed {seed}). Ties: pairs with chosen == rejected; NaN: pairs with a missing "
        f"score. Both count as wrong, except that a tie earns 0.5 when the run's tie policy (run.json 'ties') is "
        f"'half'; a NaN pair is wrong under every policy."
    )


def _markdown_table(table: Table) -> str:
    def cell(value: Cell) -> str:
        return f"{value.text} {value.note}".strip().replace("|", "\\|")

    rule = ["---"] + ["---:" if table.numeric else "---"] * (len(table.headers) - 1)
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.rows]
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    """``report.md``: warnings, the comparison tables and note, then per run its settings, robustness table and
    plots (PNG links)."""
    parts = ["# CodeRewardBench report"]
    parts += [line for warning in report.warnings for line in ("", f"> **{warning}**")]
    for table in report.tables:
        parts += ["", f"### {table.title}", "", _markdown_table(table)]
    if report.comparison is not None:
        parts += ["", report.note, "", _markdown_figure(report.comparison)]
    for run, plots in report.run_plots:
        parts += ["", f"## {run.name}", "", _markdown_table(settings_table(run))]
        for table in run_tables(run):
            parts += ["", f"### {table.title}", "", _markdown_table(table)]
        parts += [line for plot in plots for line in ("", _markdown_figure(plot))]
    if report.best_of_n is not None:
        parts += ["", f"## {BEST_OF_N_HEADING}"]
        for table in report.rerank_tables:
            parts += ["", f"### {table.title}", "", _markdown_table(table)]
        parts += ["", _markdown_figure(report.best_of_n)]
    return "\n".join(parts).rstrip() + "\n"


def _markdown_figure(plot: Plot) -> str:
    return f"![{plot.caption}]({plot.path.name})"


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0;
       background: #f6f8fa; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 10px; border-top: 1px solid #d0d7de;
     padding-top: 20px; }
p.note { color: #57606a; font-size: 13px; max-width: 900px; }
p.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: 8px 12px; max-width: 900px; }
h3 { font-size: 15px; margin: 22px 0 4px; }
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


def _html_table(table: Table, reference_rows: list[bool] | None = None) -> str:
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


def _html_figure(plot: Plot) -> str:
    data = base64.b64encode(plot.path.read_bytes()).decode("ascii")
    alt = html.escape(plot.caption)
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'


def render_html(report: Report) -> str:
    """``report.html``: the same content as the Markdown, one page with the PNGs inlined as base64."""
    nav = "".join(f'<a href="#run-{i + 1}">{html.escape(run.name)}</a>' for i, (run, _) in enumerate(report.run_plots))
    if report.best_of_n is not None:
        nav += f'<a href="#best-of-n">{BEST_OF_N_HEADING}</a>'
    reference_rows = [run.reference for run in report.runs]
    body = ["<h1>CodeRewardBench report</h1>", f"<nav>{nav}</nav>" if nav else ""]
    body += [f'<p class="warning">{html.escape(warning)}</p>' for warning in report.warnings]
    for table in report.tables:
        body += [f"<h3>{html.escape(table.title)}</h3>", _html_table(table, reference_rows)]
    if report.comparison is not None:
        body += [f'<p class="note">{html.escape(report.note)}</p>', _html_figure(report.comparison)]
    for i, (run, plots) in enumerate(report.run_plots):
        body += [f'<h2 id="run-{i + 1}">{html.escape(run.name)}</h2>', _html_table(settings_table(run))]
        for k, table in enumerate(run_tables(run)):
            anchor = f' id="run-{i + 1}-tables"' if k == 0 else ""  # where a run's results start, past its settings
            body += [f"<h3{anchor}>{html.escape(table.title)}</h3>", _html_table(table)]
        body += [_html_figure(plot) for plot in plots]
    if report.best_of_n is not None:
        body.append(f'<h2 id="best-of-n">{BEST_OF_N_HEADING}</h2>')
        for table in report.rerank_tables:
            body += [f"<h3>{html.escape(table.title)}</h3>", _html_table(table)]
        body.append(_html_figure(report.best_of_n))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>CodeRewardBench report</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(part for part in body if part) + "\n</main></body></html>\n"
    )
