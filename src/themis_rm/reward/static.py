"""Static analysis components: real analysers over candidate programs, never executing them.

* ``ruff`` — lint findings (readability, likely bugs); value = −(number of findings);
* ``bandit`` — security findings; value = −(sum of severities: low 1, medium 2, high 3);
* ``complexity`` — radon's cyclomatic complexity; value = −(the most complex block's);
* ``maintainability`` — radon's maintainability index (0-100, higher is better).

All four read Python; a candidate in another language gets no value (``None``, with the reason in its evidence).
ruff and bandit run once per batch over a directory of files (one process each, not one per candidate); radon
parses in this process (it only builds an AST). :func:`check_analyzers` says at start-up what is missing.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from themis_rm.errors import MissingExtraError, ThemisInputError

DEFAULT_RUFF_RULES = "E,F,W,B,SIM,C90,N,UP"
SEVERITY = {"LOW": 1, "MEDIUM": 2, "HIGH": 3}
ANALYZER_LANGUAGES = {"ruff": "Python", "bandit": "Python", "complexity": "Python", "maintainability": "Python"}
MAX_FINDINGS_KEPT = 20  # evidence per candidate; the value counts them all


@dataclass(frozen=True)
class StaticResult:
    """One candidate's value under one analyser, and the findings behind it."""

    value: float | None
    findings: list[dict] = field(default_factory=list)
    note: str | None = None  # why there is no value (another language, unparseable)

    def evidence(self) -> dict:
        out: dict = {"findings": self.findings[:MAX_FINDINGS_KEPT], "n_findings": len(self.findings)}
        if self.note:
            out["note"] = self.note
        return out


def check_analyzers(names: Sequence[str]) -> None:
    """Raise, before anything runs, naming each analyser that is not installed."""
    missing = [name for name in dict.fromkeys(names) if not _installed(name)]
    if missing:
        raise MissingExtraError(
            f"static analysers not installed: {', '.join(missing)}; pip install 'themis-rm[reward]'"
        )


@functools.cache
def _installed(name: str) -> bool:
    module = {"ruff": "ruff", "bandit": "bandit", "complexity": "radon", "maintainability": "radon"}[name]
    if name == "ruff":
        done = subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True, check=False)
        return done.returncode == 0
    return importlib.util.find_spec(module) is not None  # found, not imported: bandit runs as its own process


def analyse(analyzer: str, programs: Sequence[str], languages: Sequence[str], *, rules: str | None = None):
    """``analyzer``'s result for every program (same order)."""
    results: list[StaticResult | None] = [None] * len(programs)
    wanted = ANALYZER_LANGUAGES[analyzer]
    python = [i for i, language in enumerate(languages) if language == wanted]
    for i, language in enumerate(languages):
        if language != wanted:
            results[i] = StaticResult(None, note=f"{analyzer} reads {wanted}, not {language}")
    if python:
        run = {"ruff": _ruff, "bandit": _bandit, "complexity": _complexity, "maintainability": _maintainability}
        for i, result in zip(python, run[analyzer]([programs[i] for i in python], rules), strict=True):
            results[i] = result
    return results


# ------------------------------------------------------------------------------------------------ batch tools
def _batch_dir(programs: Sequence[str]) -> tuple[Path, list[Path]]:
    directory = Path(tempfile.mkdtemp(prefix="themis-static-"))
    paths = []
    for index, program in enumerate(programs):
        path = directory / f"c{index:06d}.py"
        path.write_text(program if program.endswith("\n") else program + "\n", encoding="utf-8")  # no W292 noise
        paths.append(path)
    return directory, paths


def _ruff(programs: Sequence[str], rules: str | None) -> list[StaticResult]:
    directory, paths = _batch_dir(programs)
    try:
        argv = [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--output-format", "json"]
        argv += ["--exit-zero", "--select", rules or DEFAULT_RUFF_RULES, str(directory)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ThemisInputError(f"ruff failed ({done.returncode}): {done.stderr.strip()[:300]}")
        by_file: dict[str, list[dict]] = {str(path): [] for path in paths}
        for item in json.loads(done.stdout or "[]"):
            row = {"code": item.get("code") or "syntax", "message": item["message"], "line": item["location"]["row"]}
            by_file.setdefault(item["filename"], []).append(row)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return [StaticResult(float(-len(found)), found) for found in (by_file[str(path)] for path in paths)]


def _bandit(programs: Sequence[str], rules: str | None) -> list[StaticResult]:
    directory, paths = _batch_dir(programs)
    try:
        argv = [sys.executable, "-m", "bandit", "-q", "-f", "json", "-r", str(directory)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1):  # 1: issues found
            raise ThemisInputError(f"bandit failed ({done.returncode}): {done.stderr.strip()[:300]}")
        report = json.loads(done.stdout)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    by_file: dict[str, list[dict]] = {str(path): [] for path in paths}
    for item in report.get("results", []):
        by_file.setdefault(item["filename"], []).append(
            {
                "code": item["test_id"],
                "message": item["issue_text"],
                "line": item["line_number"],
                "severity": item["issue_severity"],
                "confidence": item["issue_confidence"],
            }
        )
    unparsed = {error["filename"]: error.get("reason", "") for error in report.get("errors", [])}
    results = []
    for path in paths:
        if str(path) in unparsed:
            results.append(StaticResult(None, note=f"bandit could not parse it: {unparsed[str(path)]}"[:200]))
            continue
        found = by_file[str(path)]
        results.append(StaticResult(float(-sum(SEVERITY.get(f["severity"], 1) for f in found)), found))
    return results


# ----------------------------------------------------------------------------------------------------- radon
def _complexity(programs: Sequence[str], rules: str | None) -> list[StaticResult]:
    from radon.complexity import cc_visit

    results = []
    for program in programs:
        try:
            blocks = cc_visit(program)
        except (SyntaxError, ValueError) as error:
            results.append(StaticResult(None, note=f"radon could not parse it: {error}"[:200]))
            continue
        found = [{"code": "CC", "message": f"{b.name}: complexity {b.complexity}", "line": b.lineno} for b in blocks]
        results.append(StaticResult(float(-max((b.complexity for b in blocks), default=1)), found))
    return results


def _maintainability(programs: Sequence[str], rules: str | None) -> list[StaticResult]:
    from radon.metrics import mi_visit

    results = []
    for program in programs:
        try:
            results.append(StaticResult(float(mi_visit(program, multi=True))))
        except (SyntaxError, ValueError) as error:
            results.append(StaticResult(None, note=f"radon could not parse it: {error}"[:200]))
    return results
