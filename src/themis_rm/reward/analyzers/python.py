"""Python: ruff (lint), bandit (security findings), radon (cyclomatic complexity, maintainability index).

ruff and bandit run once per batch over a directory of files (one process each, not one per candidate); radon
parses in this process (it only builds an AST). ``# noqa`` and ``# nosec`` comments are ignored, so a candidate
cannot switch off the rules that score it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence

from themis_rm.errors import ThemisInputError
from themis_rm.reward.analyzers.base import StaticResult, batch_dir, highest

DEFAULT_RUFF_RULES = "E,F,W,B,SIM,C90,N,UP"
SEVERITY = {"LOW": 1, "MEDIUM": 2, "HIGH": 3}


@functools.cache
def ruff_installed() -> bool:
    done = subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True, check=False)
    return done.returncode == 0


def bandit_installed() -> bool:
    return importlib.util.find_spec("bandit") is not None  # found, not imported: bandit runs as its own process


def radon_installed() -> bool:
    return importlib.util.find_spec("radon") is not None


def ruff(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(number of findings) under ``rules``."""
    directory, paths = batch_dir(programs, ".py")
    try:
        argv = [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--output-format", "json"]
        argv += ["--exit-zero", "--ignore-noqa", "--select", rules or DEFAULT_RUFF_RULES, str(directory)]
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


def bandit(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(sum of severities: low 1, medium 2, high 3); no value for a file bandit cannot parse."""
    directory, paths = batch_dir(programs, ".py")
    try:
        argv = [sys.executable, "-m", "bandit", "-q", "--ignore-nosec", "-f", "json", "-r", str(directory)]
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


def radon_complexity(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(cyclomatic complexity of the most complex block)."""
    from radon.complexity import cc_visit

    results = []
    for program in programs:
        try:
            blocks = cc_visit(program)
        except (SyntaxError, ValueError) as error:
            results.append(StaticResult(None, note=f"radon could not parse it: {error}"[:200]))
            continue
        found = [
            {
                "code": "CC",
                "message": f"{b.name}: complexity {b.complexity}",
                "line": b.lineno,
                "complexity": b.complexity,
            }
            for b in blocks
        ]
        results.append(StaticResult(highest(found), found))
    return results


def radon_maintainability(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """The maintainability index, 0-100 (higher is better)."""
    from radon.metrics import mi_visit

    results = []
    for program in programs:
        try:
            results.append(StaticResult(float(mi_visit(program, multi=True))))
        except (SyntaxError, ValueError) as error:
            results.append(StaticResult(None, note=f"radon could not parse it: {error}"[:200]))
    return results
