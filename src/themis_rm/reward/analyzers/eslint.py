"""JavaScript: ESLint (lint), eslint-plugin-security (security findings), ESLint's ``complexity`` rule.

ESLint is an npm package, so it is installed once into ``$THEMIS_ANALYZERS/eslint-<version>`` (default under the
themis cache) by :func:`install` (``themis analyzers install``), with the exact versions pinned here. Each
batch is one ``node`` process running ``eslint_runner.cjs`` over a directory of candidates: ES modules
(``import``/``export``) as ``.mjs``, everything else as scripts with Node's globals. Inline ``eslint-disable``
comments are ignored, so a candidate cannot switch off the rules that score it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from themis_rm.errors import ThemisError, ThemisInputError
from themis_rm.reward.analyzers.base import StaticResult, batch_dir, highest

PACKAGES = {"eslint": "10.16.0", "@eslint/js": "10.0.1", "eslint-plugin-security": "4.1.0", "globals": "17.15.0"}
RUNNER = Path(__file__).with_name("eslint_runner.cjs")
MARKER = "themis-installed.json"
ES_MODULE = re.compile(r"^\s*(?:import\s*[\w{*'\"]|export\s)", re.MULTILINE)
COMPLEXITY = re.compile(r"complexity of (\d+)")
TIMEOUT_S = 600


def home() -> Path:
    """Where the pinned ESLint lives: ``$THEMIS_ANALYZERS/eslint-<version>``, default ``<themis cache>/analyzers``."""
    from themis_rm.packs import cache_dir

    root = Path(os.environ.get("THEMIS_ANALYZERS") or cache_dir() / "analyzers").resolve()
    return root / f"eslint-{PACKAGES['eslint']}"


def installed() -> bool:
    return shutil.which("node") is not None and (home() / MARKER).is_file()


def install_hint() -> str:
    if shutil.which("node") is None:
        return "node is not on PATH (ESLint runs on Node.js >= 20.19)"
    return f"not installed in {home()}; run `themis analyzers install` (npm)"


def versions() -> dict[str, str]:
    """The installed packages' versions (what run records say was used)."""
    return json.loads((home() / MARKER).read_text(encoding="utf-8"))


def install() -> Path:
    """npm-install the pinned packages into :func:`home` (staged, then moved into place); returns the directory."""
    npm = shutil.which("npm")
    if npm is None:
        raise ThemisError("npm is not on PATH; install Node.js (>= 20.19) to analyse JavaScript with ESLint")
    target = home()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        manifest = {"name": "themis-rm-eslint", "private": True, "dependencies": PACKAGES}
        (staging / "package.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
        argv = [npm, "install", "--no-audit", "--ignore-scripts", "--loglevel=error", "--prefix", str(staging)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as error:
            raise ThemisError(f"npm install timed out after {TIMEOUT_S} s (registry unreachable?)") from error
        if done.returncode != 0:
            raise ThemisError(f"npm install of ESLint failed (registry unreachable?): {done.stderr.strip()[-500:]}")
        found = {
            name: json.loads((staging / "node_modules" / name / "package.json").read_text(encoding="utf-8"))["version"]
            for name in PACKAGES
        }
        (staging / MARKER).write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _messages(rule_set: str, programs: Sequence[str]) -> list[list[dict]]:
    """ESLint's messages for each program under ``rule_set`` (one node process for the batch)."""
    suffixes = [".mjs" if ES_MODULE.search(program) else ".js" for program in programs]
    directory, paths = batch_dir(programs, suffixes)
    try:
        argv = ["node", str(RUNNER), str(home()), rule_set, str(directory)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise ThemisInputError(f"eslint failed ({done.returncode}): {done.stderr.strip()[:300]}")
        by_file = {item["file"]: [m for m in item["messages"] if _counted(m)] for item in json.loads(done.stdout)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return [by_file.get(str(path), []) for path in paths]


def _counted(message: dict) -> bool:
    """Rule findings and parse errors; not ESLint's notices that an inline directive had no effect."""
    return message["rule"] is not None or message["fatal"]


def _finding(message: dict) -> dict:
    return {"code": message["rule"] or "syntax", "message": message["message"], "line": message["line"]}


def _parse_failure(messages: list[dict]) -> str | None:
    fatal = next((m for m in messages if m["fatal"]), None)
    return None if fatal is None else f"eslint could not parse it: {fatal['message']}"[:200]


def _counted_findings(rule_set: str, programs: Sequence[str], *, parse_error_counts: bool) -> list[StaticResult]:
    """−(number of findings) per program; a parse error is one finding, or leaves the program without a value."""
    results = []
    for messages in _messages(rule_set, programs):
        if not parse_error_counts and (failure := _parse_failure(messages)):
            results.append(StaticResult(None, note=failure))
            continue
        found = [_finding(m) for m in messages]
        results.append(StaticResult(float(-len(found)), found))
    return results


def lint(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(number of findings); a parse error is one finding, as ruff counts a syntax error."""
    return _counted_findings("lint", programs, parse_error_counts=True)


def security(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(number of security findings); no value for a program ESLint cannot parse."""
    return _counted_findings("security", programs, parse_error_counts=False)


def complexity(programs: Sequence[str], language: str, rules: str | None) -> list[StaticResult]:
    """−(cyclomatic complexity of the most complex function); no value for a program ESLint cannot parse."""
    results = []
    for messages in _messages("complexity", programs):
        if failure := _parse_failure(messages):
            results.append(StaticResult(None, note=failure))
            continue
        found = [
            {**_finding(m), "complexity": int(match.group(1))}
            for m in messages
            if (match := COMPLEXITY.search(m["message"]))
        ]
        results.append(StaticResult(highest(found), found))
    return results
