"""Render a report's tables and plots as Markdown and as one self-contained HTML page (PNGs inlined)."""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass

from themis_rm.bench.metrics import nan_count, tie_count
from themis_rm.bench.report.load import MISSING, Run
from themis_rm.bench.report.plots import Plot


@dataclass(frozen=True)
class Cell:
    """One table cell; ``note`` (a CI) follows the text in Markdown and sits on its own line in HTML."""

    text: str
    note: str = ""  # the CI: after the text in Markdown, on its own small line in HTML


@dataclass(frozen=True)
class Table:
    """A table both renderers draw; ``numeric`` right-aligns every column after the first."""

    headers: list[str]
    rows: list[list[Cell]]
    numeric: bool = True  # right-align every column after the first


@dataclass(frozen=True)
class Report:
    """Everything both renderers show: the rows, the comparison table and chart, each own run's plots."""

    runs: list[Run]
    table: Table
    comparison: Plot
    run_plots: list[tuple[Run, list[Plot]]]
    note: str


def _pct(value: float | None) -> str:
    return MISSING if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _ci(bounds: tuple[float, float] | None) -> str:
    if bounds is None or math.isnan(bounds[0]):
        return ""
    return f"[{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]"


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
            Cell(_pct(run.results["overall"].get("accuracy")), _ci(run.overall_ci)),
            *[Cell(_pct(by_aspect.get(a, {}).get("accuracy")), _ci(run.aspect_ci.get(a))) for a in aspects],
            Cell(f"{tie_count(run.scores):,}"),
            Cell(f"{nan_count(run.scores):,}"),
            Cell(f"{pairs_per_s:,.1f}" if isinstance(pairs_per_s, int | float) else MISSING),
        ]
        rows.append(row)
    return Table(headers, rows)


def settings_table(run: Run) -> Table:
    """A run's directory and ``run.json`` settings, long values cut at 120 characters."""
    rows = [[Cell("directory"), Cell(str(run.directory))]]
    for key, value in run.settings.items():
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
    """``report.md``: the comparison table and note, then per run its settings and plots (PNG links)."""
    parts = ["# CodeRewardBench report", "", _markdown_table(report.table), "", report.note]
    parts += ["", f"![{report.comparison.caption}]({report.comparison.path.name})"]
    for run, plots in report.run_plots:
        parts += ["", f"## {run.name}", "", _markdown_table(settings_table(run))]
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
    body = [
        "<h1>CodeRewardBench report</h1>",
        f"<nav>{nav}</nav>" if nav else "",
        _html_table(report.table, [run.reference for run in report.runs]),
        f'<p class="note">{html.escape(report.note)}</p>',
        _html_figure(report.comparison),
    ]
    for i, (run, plots) in enumerate(report.run_plots):
        body += [f'<h2 id="run-{i + 1}">{html.escape(run.name)}</h2>', _html_table(settings_table(run))]
        body += [_html_figure(plot) for plot in plots]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>CodeRewardBench report</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(part for part in body if part) + "\n</main></body></html>\n"
    )
