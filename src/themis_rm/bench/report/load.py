"""Read benchmark run directories into the rows of a report: results, per-pair scores and credit, settings."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from themis_rm.bench.diagnostics import DIAGNOSTICS_FILE
from themis_rm.bench.metrics import TIE_POLICIES, pair_credit, read_scores_parquet
from themis_rm.errors import ThemisInputError

RUN_FILES = ("results.json", "scores.parquet")
MISSING = "—"
"""How a value the run does not have shows in tables and plots."""


@dataclass
class Run:
    """One row of the report: a run directory's results, per-pair scores and credit; the build fills in the CIs."""

    label: str
    directory: Path
    reference: bool
    results: dict[str, Any]
    scores: pd.DataFrame
    settings: dict[str, Any]
    credit: pd.Series = field(repr=False)
    overall_ci: tuple[float, float] = (math.nan, math.nan)
    aspect_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    language_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)  # diagnostics.json of a bench run; {} without one

    @property
    def robustness(self) -> dict[str, dict[str, Any]]:
        """``run.json``'s perturbation summary (``{kind: {side, accuracy, drop, ...}}``); {} without one."""
        summary = self.settings.get("robustness")
        return summary if isinstance(summary, dict) else {}

    @property
    def name(self) -> str:
        """The row's label, marked ``(reference)`` for a reference run."""
        return f"{self.label} (reference)" if self.reference else self.label


def load_run(directory: Path, *, reference: bool) -> Run:
    """Reads one run directory; the tie policy of its ``run.json`` decides the per-pair credit."""
    if not directory.is_dir():
        raise ThemisInputError(f"{directory}: run directory not found (expected results.json and scores.parquet)")
    missing = [name for name in RUN_FILES if not (directory / name).is_file()]
    if missing:
        raise ThemisInputError(
            f"{directory}: missing {' and '.join(missing)} (a run directory needs results.json and scores.parquet)"
        )
    results = read_json_object(directory / "results.json")
    if not isinstance(results.get("overall"), dict):
        raise ThemisInputError(f"{directory / 'results.json'}: no 'overall' object (expected a bench results.json)")
    settings = read_json_object(directory / "run.json") if (directory / "run.json").is_file() else {}
    scores = read_scores_parquet(directory / "scores.parquet")
    label = str(settings.get("model") or directory.name)
    credit = pair_credit(scores, _tie_policy(settings, directory))
    diagnostics_path = directory / DIAGNOSTICS_FILE
    diagnostics = read_json_object(diagnostics_path) if diagnostics_path.is_file() else {}
    return Run(label, directory.resolve(), reference, results, scores, settings, credit, diagnostics=diagnostics)


def load_references(reference_dir: Path, skip: set[Path]) -> list[Run]:
    """Every run directory under ``reference_dir`` not in ``skip``, best overall accuracy first."""
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
    references = [load_run(path, reference=True) for path in candidates if path.resolve() not in skip]
    return sorted(references, key=lambda run: -(run.results["overall"].get("accuracy") or 0.0))


def read_json_object(path: Path) -> dict[str, Any]:
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


def disambiguate_labels(runs: list[Run]) -> None:
    """Two rows with one label (same model, other settings) get their directory name appended."""
    names = [run.name for run in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.label = f"{run.label} [{run.directory.name}]"


def run_slugs(runs: list[Run]) -> list[tuple[Run, str]]:
    """Own (non-reference) runs with a file-name-safe ``run<k>-<label>`` prefix for their plots."""
    own = [run for run in runs if not run.reference]
    return [(run, f"run{i + 1}-{re.sub(r'[^A-Za-z0-9.]+', '-', run.label).strip('-')}") for i, run in enumerate(own)]
