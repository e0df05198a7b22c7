"""The report's diagnostics section of one run: its tables and plots, from the run's ``diagnostics.json``.

Null baselines beside the model (flagged cells marked), calibration and ranking quality, length bias, accuracy by
edit size, and, when the run measured it, criterion steerability; plots: the baselines as bars, a reliability
diagram and the steerability heatmap. A run without ``diagnostics.json`` (a reference run) has no section.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps

from themis_rm.bench.diagnostics import BASELINES, FLAG_ACCURACY
from themis_rm.bench.report.load import MISSING, Run
from themis_rm.bench.report.plots import CHANCE, Plot, new_figure, save_figure
from themis_rm.bench.report.table import Cell, Table, pct

FLAG_MARK = "⚑"
ROWS = ("model", *BASELINES)
COLORS = {"model": "#2f6fb0", "longer": "#d08c2b", "shorter": "#8a63b5", "random": "#9aa5b1"}


# -------------------------------------------------------------------------------------------------- tables
def diagnostics_tables(run: Run) -> list[Table]:
    """The run's diagnostics tables; [] without ``diagnostics.json``."""
    d = run.diagnostics
    if not d:
        return []
    tables = [baseline_table(d), quality_table(d), length_table(d), edit_size_table(d)]
    if d.get("steerability"):
        tables.append(steerability_table(d["steerability"]))
    return tables


def baseline_table(d: dict[str, Any]) -> Table:
    """Model and null baselines by aspect; a flagged cell carries the mark and why."""
    accuracy = d["baselines"]["accuracy"]
    flags = {(f["baseline"], f["aspect"]): f["reasons"] for f in d["baselines"]["flags"] if f["language"] is None}
    aspects = sorted(accuracy["model"]["by_aspect"])
    rows = []
    for name in ROWS:
        table = accuracy[name]
        cells = [_flagged(table["overall"], flags.get((name, None)))]
        cells += [_flagged(table["by_aspect"].get(a, {}), flags.get((name, a))) for a in aspects]
        rows.append([Cell(name), *cells])
    title = (
        f"Null baselines: accuracy % by aspect ({FLAG_MARK}: the baseline beats the model or passes "
        f"{FLAG_ACCURACY:.0%}; cells per language in diagnostics.json)"
    )
    return Table(["Predictor", "All", *aspects], rows, title=title)


def _flagged(cell: dict[str, Any], reasons: list[str] | None) -> Cell:
    text = pct(cell.get("accuracy"))
    return Cell(f"{text} {FLAG_MARK}" if reasons else text, ", ".join(reasons or []).replace("_", " "))


def quality_table(d: dict[str, Any]) -> Table:
    calibration = d["calibration"]
    low, high = d["accuracy_ci95"]
    rows = [
        ("accuracy 95% CI", f"[{pct(low)}, {pct(high)}] %" if low is not None else MISSING),
        ("ROC-AUC of chosen − rejected", _number(d.get("roc_auc"))),
        ("ECE (10 bins)", _number(calibration.get("ece"))),
        ("MCE", _number(calibration.get("mce"))),
        ("Brier score", _number(calibration.get("brier"))),
        ("log loss (BT)", _number(calibration.get("log_loss"))),
        ("pairs (NaN left out)", f"{calibration['n']:,} ({calibration['n_excluded']:,})"),
    ]
    return Table(
        ["Metric", "Value"],
        [[Cell(name), Cell(value)] for name, value in rows],
        title="Calibration of sigmoid(chosen − rejected) and ranking quality",
    )


def length_table(d: dict[str, Any]) -> Table:
    bias = d["length_bias"]
    rows = []
    for name, row in [("All", bias["overall"]), *sorted(bias["by_aspect"].items())]:
        rows.append(
            [Cell(name), Cell(_number(row["spearman"])), Cell(pct(row["picks_longer"])), Cell(f"{row['pairs']:,}")]
        )
    headers = ["Aspect", "Spearman(reward, length)", "Picks the longer %", "Pairs"]
    return Table(headers, rows, title="Length bias: does the reward follow response length?")


def edit_size_table(d: dict[str, Any]) -> Table:
    rows = [
        [Cell(bucket), Cell(f"{row['count']:,}"), *[Cell(pct(row[name])) for name in ROWS]]
        for bucket, row in d["by_edit_size"].items()
    ]
    headers = ["Lines changed", "Pairs", *[f"{name} %" for name in ROWS]]
    return Table(headers, rows, title="Accuracy by edit size (share of lines that differ between chosen and rejected)")


def steerability_table(s: dict[str, Any]) -> Table:
    """Aspect (rows) × criterion prompt (columns) accuracy, and each aspect's diagonal advantage."""
    prompts = s["prompts"]
    rows = []
    for aspect, row in s["matrix"].items():
        advantage = s["diagonal_advantage"].get(aspect)
        cells = [Cell(pct(row.get(p))) for p in prompts]
        rows.append([Cell(aspect), *cells, Cell(f"{100 * advantage:+.2f}" if advantage is not None else MISSING)])
    mean = s.get("mean_diagonal_advantage")
    title = (
        "Criterion steerability: accuracy % of each aspect's pairs under each prompt; advantage = own prompt − "
        f"mean of the other criteria (points; mean {100 * mean:+.2f})"
        if mean is not None
        else "Criterion steerability"
    )
    return Table(["Aspect", *prompts, "Advantage"], rows, title=title)


def _number(value: float | None) -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


# --------------------------------------------------------------------------------------------------- plots
def diagnostics_plots(run: Run, output: Path, slug: str) -> list[Plot]:
    """Baseline bars and the reliability diagram (and the steerability heatmap); [] without diagnostics."""
    d = run.diagnostics
    if not d:
        return []
    plots = [
        plot_baselines(run.name, d["baselines"]["accuracy"], output / f"{slug}-baselines.png"),
        plot_reliability(run.name, d["calibration"], output / f"{slug}-reliability.png"),
    ]
    if d.get("steerability"):
        plots.append(plot_steerability(run.name, d["steerability"], output / f"{slug}-steerability.png"))
    return plots


def plot_baselines(name: str, accuracy: dict[str, Any], path: Path) -> Plot:
    groups = ["All", *sorted(accuracy["model"]["by_aspect"])]
    figure = new_figure(max(7.0, 1.5 + 1.4 * len(groups)), 3.4)
    ax = figure.add_subplot()
    width = 0.8 / len(ROWS)
    x = np.arange(len(groups))
    for k, row in enumerate(ROWS):
        table = accuracy[row]
        values = [table["overall"]["accuracy"], *[table["by_aspect"].get(g, {}).get("accuracy") for g in groups[1:]]]
        values = np.array([math.nan if v is None else 100 * v for v in values])
        ax.bar(x + (k - (len(ROWS) - 1) / 2) * width, values, width, label=row, color=COLORS[row])
    ax.axhline(100 * FLAG_ACCURACY, color="#c4432b", linestyle="--", linewidth=1, label=f"{FLAG_ACCURACY:.0%} flag")
    ax.axhline(100 * CHANCE, color="#555", linestyle=":", linewidth=1)
    ax.set_xticks(x, groups, rotation=20, ha="right", fontsize=9)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy %")
    ax.legend(fontsize=8, frameon=False, ncols=5, loc="upper left")
    ax.set_title(f"{name}: the model against null baselines", loc="left", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    caption = "Accuracy of the model and of rules that never read the code (longer wins, shorter wins, a coin)"
    return save_figure(figure, path, caption)


def plot_reliability(name: str, calibration: dict[str, Any], path: Path) -> Plot:
    bins = [b for b in calibration["bins"] if b["count"]]
    figure = new_figure(6.0, 4.2)
    ax = figure.add_subplot()
    ax.plot([50, 100], [50, 100], color="#555", linestyle=":", linewidth=1, label="perfect calibration")
    if bins:
        confidence = np.array([100 * b["confidence"] for b in bins])
        accuracy = np.array([100 * b["accuracy"] for b in bins])
        ax.plot(confidence, accuracy, marker="o", color="#2f6fb0", label="model")
        counts = ax.twinx()
        centres = [50 * (b["low"] + b["high"]) for b in bins]
        counts.bar(centres, [b["count"] for b in bins], width=4.5, color="#9aa5b1", alpha=0.35)
        counts.set_ylabel("pairs per bin", color="#6e7781")
        ax.set_zorder(counts.get_zorder() + 1)  # the curve over the count bars
        ax.patch.set_visible(False)
    ax.set_xlim(50, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("confidence: max(p, 1 − p) %, p = sigmoid(chosen − rejected)")
    ax.set_ylabel("accuracy of the pick %")
    ece = calibration.get("ece")
    ax.set_title(f"{name}: reliability (ECE {_number(ece)})", loc="left", fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return save_figure(figure, path, "Reliability diagram: accuracy of the pick against the model's confidence")


def plot_steerability(name: str, s: dict[str, Any], path: Path) -> Plot:
    aspects, prompts = list(s["matrix"]), s["prompts"]
    values = np.array([[s["matrix"][a].get(p, math.nan) or math.nan for p in prompts] for a in aspects]) * 100
    figure = new_figure(max(6.0, 1.8 + 1.1 * len(prompts)), max(2.6, 1.0 + 0.6 * len(aspects)))
    ax = figure.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=colormaps["RdYlGn"], vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        own = prompts[j] == aspects[i]
        text = MISSING if math.isnan(value) else f"{value:.1f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=10, weight="bold" if own else "normal")
    ax.set_xticks(range(len(prompts)), prompts, rotation=30, ha="right")
    ax.set_yticks(range(len(aspects)), aspects)
    ax.set_xlabel("criterion prompt")
    ax.set_ylabel("pair aspect")
    ax.set_title(f"{name}: accuracy % under each criterion prompt (bold: own)", loc="left", fontsize=11)
    figure.colorbar(image, ax=ax, fraction=0.03, label="accuracy %")
    return save_figure(figure, path, "Criterion steerability: each aspect's pairs scored under every prompt")
