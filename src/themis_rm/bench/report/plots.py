"""The report's PNG plots, drawn on an explicit Agg canvas (no pyplot, no global backend state)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from themis_rm.atomic import atomic_path
from themis_rm.bench.metrics import bootstrap_mean_ci
from themis_rm.bench.report.load import MISSING, Run

CHANCE = 0.5
_DPI = 110


@dataclass(frozen=True)
class Plot:
    """A written PNG and the caption both renderers show under it."""

    path: Path
    caption: str


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas, explicitly: no pyplot, no global backend state
    return figure


def save_figure(figure: Figure, path: Path, caption: str) -> Plot:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=_DPI)
    return Plot(path, caption)


def plot_run(run: Run, output: Path, slug: str, n_bootstrap: int, seed: int) -> list[Plot]:
    """A run's plots: aspect × language heatmap, score-difference histograms, subset bars, and the perturbation
    drops when the run has them."""
    plots = [
        _plot_heatmap(run, output / f"{slug}-aspect-language.png"),
        _plot_score_diff(run, output / f"{slug}-score-diff.png"),
        _plot_subsets(run, output / f"{slug}-subsets.png", n_bootstrap, seed),
    ]
    if run.robustness:
        plots.append(_plot_robustness(run, output / f"{slug}-robustness.png"))
    return plots


def plot_comparison(runs: list[Run], path: Path) -> Plot:
    """Overall accuracy of every row as horizontal bars with 95% CI error bars; references in grey."""
    accuracy = np.array([run.results["overall"].get("accuracy") or math.nan for run in runs]) * 100
    low = np.array([run.overall_ci[0] for run in runs]) * 100
    high = np.array([run.overall_ci[1] for run in runs]) * 100
    figure = new_figure(9, max(2.0, 1.2 + 0.45 * len(runs)))
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
    return save_figure(figure, path, "Overall accuracy with 95% bootstrap confidence intervals")


def _plot_heatmap(run: Run, path: Path) -> Plot:
    grouped = run.credit.groupby([run.scores["aspect"], run.scores["language"]]).agg(["mean", "count"])
    accuracy = grouped["mean"].unstack().sort_index().sort_index(axis=1)
    counts = grouped["count"].unstack().reindex_like(accuracy).fillna(0).astype(int)
    figure = new_figure(max(6.0, 1.6 + 1.05 * accuracy.shape[1]), max(2.6, 1.0 + 0.62 * accuracy.shape[0]))
    ax = figure.add_subplot()
    cmap = colormaps["RdYlGn"].with_extremes(bad="#e6e6e6")
    percent = 100 * accuracy.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(percent), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(percent):
        if math.isnan(value):
            ax.text(j, i, MISSING, ha="center", va="center", color="#777")
            continue
        color = "white" if abs(value - 100 * CHANCE) > 33 else "black"
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", color=color, fontsize=10, weight="bold")
        ax.text(j, i + 0.3, f"n={counts.iat[i, j]:,}", ha="center", va="center", color=color, fontsize=7)
    ax.set_xticks(range(accuracy.shape[1]), accuracy.columns, rotation=30, ha="right")
    ax.set_yticks(range(accuracy.shape[0]), accuracy.index)
    ax.set_title(f"{run.name}: accuracy % by aspect × language", loc="left", fontsize=11)
    figure.colorbar(image, ax=ax, fraction=0.03, label="accuracy %")
    return save_figure(figure, path, "Accuracy (%) by aspect and language; n = pairs per cell, grey = no pairs")


def _plot_score_diff(run: Run, path: Path) -> Plot:
    diff = run.scores["score_diff"].to_numpy(dtype=float)
    finite = diff[np.isfinite(diff)]
    low, high = np.percentile(finite, [0.5, 99.5]) if finite.size else (-1.0, 1.0)
    bins = _bins_split_at_zero(min(low, -1e-9), max(high, 1e-9))
    aspects = sorted(run.scores["aspect"].dropna().unique())
    ncols = min(3, max(len(aspects), 1))
    figure = new_figure(max(7.0, 4.2 * ncols), 2.7 * max(math.ceil(len(aspects) / ncols), 1))
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
    return save_figure(figure, path, "Score difference (chosen − rejected) per aspect; green: chosen scored higher")


def _bins_split_at_zero(low: float, high: float, n_bins: int = 40) -> np.ndarray:
    """About ``n_bins`` equal-width bins over [low, high] with 0 as an edge, so no bin mixes wins and losses."""
    n_low = min(max(round(n_bins * -low / (high - low)), 1), n_bins - 1)
    return np.concatenate([np.linspace(low, 0, n_low + 1), np.linspace(0, high, n_bins - n_low + 1)[1:]])


def _plot_subsets(run: Run, path: Path, n_bootstrap: int, seed: int) -> Plot:
    grouped = run.credit.groupby(run.scores["subset"], sort=True)
    subsets = [str(name) for name, _ in grouped]
    accuracy = grouped.mean().to_numpy() * 100
    counts = grouped.size().to_numpy()
    ci = np.array([bootstrap_mean_ci(group.to_numpy(), n_bootstrap, seed) for _, group in grouped])
    order = np.argsort(accuracy)
    figure = new_figure(9, max(2.0, 1.0 + 0.32 * len(subsets)))
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
    return save_figure(figure, path, "Accuracy per subset, highest at the top, with 95% bootstrap CIs")


SIDE_COLORS = {"chosen": "#2e9d5b", "rejected": "#c4432b", "both": "#2f6fb0"}


def _plot_robustness(run: Run, path: Path) -> Plot:
    """Accuracy under each perturbation beside the clean accuracy; colour = the side the perturbation edits."""
    kinds = sorted(run.robustness, key=lambda kind: run.robustness[kind].get("drop") or 0.0)
    accuracy = np.array([run.robustness[k].get("accuracy") or math.nan for k in kinds]) * 100
    clean = 100 * (run.results["overall"].get("accuracy") or math.nan)
    figure = new_figure(9, max(2.0, 1.2 + 0.4 * len(kinds)))
    ax = figure.add_subplot()
    y = np.arange(len(kinds))[::-1]
    colors = [SIDE_COLORS.get(str(run.robustness[k].get("side")), "#9aa5b1") for k in kinds]
    ax.barh(y, accuracy, color=colors)
    for yi, value in zip(y, accuracy, strict=True):
        ax.text(value + 1, yi, f"{value:.1f} ({value - clean:+.1f})", va="center", fontsize=8.5)
    ax.set_yticks(y, kinds, fontsize=9)
    ax.axvline(clean, color="#222", linestyle="--", linewidth=1, label=f"clean {clean:.2f}")
    ax.axvline(100 * CHANCE, color="#555", linestyle=":", linewidth=1, label="chance")
    handles = [Patch(color=color, label=f"edits {side}") for side, color in SIDE_COLORS.items()]
    ax.legend(handles=[*ax.get_lines(), *handles], loc="lower right", fontsize=8, frameon=False)
    ax.set_xlim(0, 110)
    ax.set_xlabel("accuracy % under the perturbation (in brackets: change from clean, points)")
    ax.set_title(f"{run.name}: robustness to judge-hacking perturbations", loc="left", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return save_figure(
        figure, path, "Accuracy under each perturbation, largest drop at the bottom; dashed: clean accuracy"
    )
