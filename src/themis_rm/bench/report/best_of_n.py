"""The report's best-of-N section: ``themis rerank`` directories, their curves as tables and one plot.

Each rerank run is a line (its model under its criterion, so runs under several criteria compare on one plot),
with its bootstrap band; the oracle and random bounds are drawn once per distinct question set. Panels: all
questions, then each language.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from themis_rm.bench.best_of_n import BEST_OF_N_FILE
from themis_rm.bench.report.load import disambiguate_labels, read_json_object
from themis_rm.bench.report.plots import Plot, new_figure, save_figure
from themis_rm.bench.report.table import Cell, Table, pct
from themis_rm.errors import ThemisInputError

ALL = "All"
LINE_COLORS = ("#2f6fb0", "#c4432b", "#3a9a5b", "#8a63b5", "#d08c2b", "#1b8a99")


@dataclass
class RerankRun:
    """One ``themis rerank`` directory: its curves and settings."""

    label: str
    directory: Path
    curves: dict[str, Any]
    settings: dict[str, Any]

    @property
    def name(self) -> str:
        return self.label

    def curve(self, group: str) -> dict[str, list] | None:
        """The curve over all questions (``ALL``) or one language's; None when the run has no such questions."""
        return self.curves["overall"] if group == ALL else self.curves["by_language"].get(group)


def load_rerank_run(directory: Path) -> RerankRun:
    """Reads a rerank run directory (``best_of_n.json``, ``run.json``)."""
    directory = Path(directory)
    curves_path = directory / BEST_OF_N_FILE
    if not curves_path.is_file():
        raise ThemisInputError(f"{directory}: no {BEST_OF_N_FILE} (a themis rerank output directory has one)")
    curves = read_json_object(curves_path)
    settings = read_json_object(directory / "run.json") if (directory / "run.json").is_file() else {}
    model = str(settings.get("model") or directory.name)
    return RerankRun(f"{model} · {curves.get('criterion', 'none')}", directory.resolve(), curves, settings)


def load_rerank_runs(directories: list[Path]) -> list[RerankRun]:
    """Every rerank directory; two with one label get their directory name appended."""
    runs = [load_rerank_run(path) for path in directories]
    disambiguate_labels(runs)
    return runs


def best_of_n_table(run: RerankRun) -> Table:
    """One row per N over all questions: the model's expected pass with its CI, the oracle's and random's."""
    curve = run.curves["overall"]
    rows = [
        [
            Cell(f"N = {n}"),
            Cell(f"{questions:,}"),
            Cell(pct(model), _ci(ci)),
            Cell(pct(oracle)),
            Cell(pct(random)),
        ]
        for n, questions, model, ci, oracle, random in zip(
            curve["n"],
            curve["n_questions"],
            curve["model"],
            curve["model_ci95"],
            curve["oracle"],
            curve["random"],
            strict=True,
        )
    ]
    title = (
        f"Best-of-N, {run.label}: pass % of the top-scored of N candidates [95% CI over questions], against a "
        "perfect picker (oracle) and a random one"
    )
    return Table(["Best of", "Questions", "Model %", "Oracle %", "Random %"], rows, title=title)


def _ci(bounds: list[float | None]) -> str:
    low, high = bounds
    return "" if low is None or high is None else f"[{100 * low:.1f}, {100 * high:.1f}]"


def plot_best_of_n(runs: list[RerankRun], path: Path) -> Plot:
    """Panels for all questions and each language: each run's curve with its band, oracle and random bounds."""
    languages = sorted({language for run in runs for language in run.curves["by_language"]})
    groups = [ALL, *languages] if len(languages) > 1 else [ALL]
    columns = min(3, len(groups))
    rows = math.ceil(len(groups) / columns)
    figure = new_figure(4.2 * columns + 0.6, 3.3 * rows + 0.4)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    question_sets = {run.settings.get("data") for run in runs}
    for ax, group in zip(axes, groups, strict=False):
        for k, run in enumerate(runs):
            curve = run.curve(group)
            if curve is None or not curve["n"]:
                continue
            color = LINE_COLORS[k % len(LINE_COLORS)]
            n = np.array(curve["n"])
            ax.plot(n, 100 * _values(curve["model"]), marker="o", color=color, label=run.label)
            low, high = (100 * _values([ci[i] for ci in curve["model_ci95"]]) for i in (0, 1))
            ax.fill_between(n, low, high, color=color, alpha=0.15, linewidth=0)
            if k == 0 or len(question_sets) > 1:  # the bounds depend on the questions only
                suffix = "" if len(question_sets) == 1 else f" ({run.directory.name})"
                ax.plot(n, 100 * _values(curve["oracle"]), "--", color="#555", label=f"oracle{suffix}")
                ax.plot(n, 100 * _values(curve["random"]), ":", color="#555", label=f"random{suffix}")
        ax.set_xscale("log", base=2)
        ticks = sorted({n for run in runs if (c := run.curve(group)) for n in c["n"]})
        if ticks:
            ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_ylim(0, 100)
        ax.set_xlabel("N candidates")
        ax.set_ylabel("pass % of the pick")
        ax.set_title(group, loc="left", fontsize=11)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncols=min(4, len(labels)), fontsize=9, frameon=False)
    caption = (
        "Best-of-N: expected pass rate of the top-scored of N candidates (exact over all N-subsets; band: 95% "
        "bootstrap CI over questions), against the oracle and a random pick; a point averages the questions with "
        "at least N candidates (the tables give how many)"
    )
    return save_figure(figure, path, caption)


def _values(values: list[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
