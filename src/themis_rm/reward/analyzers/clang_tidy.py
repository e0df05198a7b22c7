"""C and C++: clang-tidy (lint, security checks and the clang static analyser, cognitive complexity).

clang-tidy comes from PyPI (the ``clang-tidy`` wheel, in the ``reward`` extra) and parses each candidate with this
machine's C/C++ headers; nothing is built or run. The preprocessor reads whatever a candidate ``#include``s, so
every clang-tidy process runs with a timeout and, where ``prlimit`` exists, capped memory and CPU; diagnostics
located in an included file are not kept (their text would quote that file), only that the candidate failed to
compile. ``NOLINT``
comments are defused before analysis, so a candidate cannot switch off the checks that score it. Batches are
split over one process per core.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from themis_rm.errors import ThemisInputError
from themis_rm.reward.analyzers.base import StaticResult, batch_dir, highest

LINT_CHECKS = ",".join(
    (
        "-*,bugprone-*,performance-*,readability-*,misc-*",
        # noise on every candidate, or measured by another analyser
        "-readability-magic-numbers,-readability-identifier-length,-readability-function-cognitive-complexity",
        "-bugprone-easily-swappable-parameters,-misc-include-cleaner,-misc-use-internal-linkage",
        "-misc-use-anonymous-namespace",
    )
)
SECURITY_CHECKS = ",".join(
    (
        "-*,clang-analyzer-security.*,clang-analyzer-unix.*,clang-analyzer-core.*,clang-analyzer-cplusplus.*",
        "cert-*,-cert-err33-c,bugprone-unsafe-functions,bugprone-command-processor,clang-diagnostic-format-security",
        # Annex K advice: it flags every scanf, snprintf and memcpy, the secure code as much as the insecure
        "-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling",
    )
)
COMPLEXITY_CHECKS = "-*,readability-function-cognitive-complexity"
COMPLEXITY_CONFIG = (
    "{CheckOptions: {readability-function-cognitive-complexity.Threshold: 0, "
    "readability-function-cognitive-complexity.DescribeBasicIncrements: false}}"
)
FLAGS = {
    # gcc accepts implicit declarations with a warning; so does this, so a missing #include is not a parse failure
    "C": ("-std=gnu17", "-Wformat-security", "-Wno-error=implicit-function-declaration", "-Wno-error=implicit-int"),
    "Cpp": ("-std=gnu++17", "-Wformat-security"),
}
SUFFIX = {"C": ".c", "Cpp": ".cpp"}
COGNITIVE = re.compile(r"cognitive complexity of (\d+)")
FAILED = re.compile(r"^Error while processing (.+)\.$", re.MULTILINE)
TIMEOUT_S = 300
MEMORY_LIMIT = "4294967296"  # bytes of address space per clang-tidy process
CPU_LIMIT_S = "240"


def binary() -> str | None:
    """The clang-tidy beside this interpreter (the wheel's entry point in a venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("clang-tidy")
    return str(beside) if beside.is_file() else shutil.which("clang-tidy")


def installed() -> bool:
    return binary() is not None


def install_hint() -> str:
    return "clang-tidy is not installed; pip install 'themis-rm[reward]' (the clang-tidy wheel)"


def version() -> str:
    done = subprocess.run([binary(), "--version"], capture_output=True, text=True, check=False)  # type: ignore[list-item]
    found = re.search(r"version (\S+)", done.stdout)
    return found.group(1) if found else "unknown"


def _defused(program: str) -> str:
    return program.replace("NOLINT", "N0LINT")  # same length: the byte offsets clang reports stay right


def _diagnostics(checks: str, programs: Sequence[str], language: str, config: str | None) -> list[list[dict]]:
    """clang-tidy's diagnostics for each program: ``{code, message, line, error}``, in the candidate's own lines."""
    directory, paths = batch_dir([_defused(p) for p in programs], SUFFIX[language])
    try:
        workers = max(1, min(len(paths), len(os.sched_getaffinity(0))))
        chunks = [paths[i::workers] for i in range(workers)]
        with ThreadPoolExecutor(workers) as pool:
            found: dict[str, list[dict]] = {}
            for part in pool.map(lambda chunk: _run(checks, chunk, language, config), chunks):
                found.update(part)
        return [found.get(str(path), []) for path in paths]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run(checks: str, paths: Sequence[Path], language: str, config: str | None) -> dict[str, list[dict]]:
    with tempfile.NamedTemporaryFile(suffix=".yaml", delete=False) as handle:
        fixes = Path(handle.name)
    try:
        argv = [binary(), "--quiet", f"--checks={checks}", f"--export-fixes={fixes}"]
        if config:
            argv.append(f"--config={config}")
        argv += [str(p) for p in paths] + ["--", *FLAGS[language]]
        if shutil.which("prlimit"):
            argv = ["prlimit", f"--as={MEMORY_LIMIT}", f"--cpu={CPU_LIMIT_S}", "--", *argv]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise ThemisInputError(f"clang-tidy took over {TIMEOUT_S} s on a batch of {len(paths)}") from error
        text = fixes.read_text(encoding="utf-8") if fixes.stat().st_size else ""
        if done.returncode not in (0, 1) and not text:  # 1: compile errors in some file, still reported
            raise ThemisInputError(f"clang-tidy failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    finally:
        fixes.unlink(missing_ok=True)
    sources = {str(p): p.read_bytes() for p in paths}
    found: dict[str, list[dict]] = {str(p): [] for p in paths}
    for item in (yaml.safe_load(text) or {}).get("Diagnostics") or []:
        message = item.get("DiagnosticMessage") or {}
        if (where := message.get("FilePath")) in sources:  # the text of a diagnostic in an included file is not kept
            line = sources[where][: int(message.get("FileOffset") or 0)].count(b"\n") + 1
            error = item.get("Level") == "Error"
            found[where].append(
                {"code": item["DiagnosticName"], "message": message.get("Message", ""), "line": line, "error": error}
            )
    for where in FAILED.findall(done.stderr):  # compile errors clang-tidy could not place in the candidate itself
        if where in found and not any(f["error"] for f in found[where]):
            found[where].append(
                {"code": "clang-diagnostic-error", "message": "(in an included file)", "line": None, "error": True}
            )
    return found


def _compile_failure(found: list[dict]) -> str | None:
    first = next((f for f in found if f["error"]), None)
    return None if first is None else f"clang could not compile it: {first['message']}"[:200]


def _public(found: list[dict]) -> list[dict]:
    return [{k: v for k, v in f.items() if k != "error"} for f in found]


def lint(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(number of findings); a compile error is a finding, as ruff counts a syntax error."""
    return [StaticResult(float(-len(f)), _public(f)) for f in _diagnostics(LINT_CHECKS, programs, language, None)]


def security(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(number of security findings: CERT rules, unsafe functions, the static analyser's security, memory and
    null-dereference checks); no value for a program clang cannot compile."""
    results = []
    for found in _diagnostics(SECURITY_CHECKS, programs, language, None):
        failure = _compile_failure(found)
        results.append(
            StaticResult(None, note=failure) if failure else StaticResult(float(-len(found)), _public(found))
        )
    return results


def complexity(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(cognitive complexity of the most complex function) — clang-tidy's measure, not cyclomatic; no value for a
    program clang cannot compile."""
    results = []
    for found in _diagnostics(COMPLEXITY_CHECKS, programs, language, COMPLEXITY_CONFIG):
        if failure := _compile_failure(found):
            results.append(StaticResult(None, note=failure))
            continue
        scored = [
            {**f, "complexity": int(match.group(1))}
            for f in _public(found)
            if (match := COGNITIVE.search(f["message"]))
        ]
        results.append(StaticResult(highest(scored, default=0), scored, note="cognitive complexity (clang-tidy)"))
    return results
