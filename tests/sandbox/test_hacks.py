"""The hack suite against the sandbox: every hack scored as a failure, nothing left behind.

Each case fails on the sandbox before the judge/candidate split (forged result marker, always-equal objects, int
subclasses, rewritten test lists, tests read from memory, orphaned children, writes to /tmp): that harness read
its verdict from the candidate's own stdout and ran the tests in the candidate's process.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from themis_rm.cli import app
from themis_rm.sandbox import isolation
from themis_rm.sandbox.hacks import HACK_LIMITS, TESTS, cases, judge_case
from themis_rm.sandbox.process import MODE_ENV
from themis_rm.sandbox.python import run_tests

CASES = {case.name: case for case in cases()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_hack_is_scored_as_a_failure_and_leaves_nothing(name):
    case = next(c for c in cases() if c.name == name)  # fresh markers per test
    verdict = judge_case(case)
    if case.requires in isolation().missing:  # the machine lacks the defence: the verdict must say so, not pass
        assert verdict.held or any(case.requires in problem for problem in verdict.problems)
        return
    assert verdict.held, verdict.problems
    assert not verdict.report.all_passed and verdict.report.passed < len(TESTS)


FALLBACK_CASES = ("forged_result_marker", "always_equal_object", "orphan_child", "write_outside", "fork_bomb")


def test_the_fallback_mode_holds_the_same_hacks(monkeypatch):
    """Without namespaces (forced here): subreaper tree kill, stray-file removal, rlimits, the same verdicts."""
    monkeypatch.setenv(MODE_ENV, "fallback")
    isolation.cache_clear()
    try:
        level = isolation()
        assert level.mode == "fallback" and not level.guarantees["separate_pids"]
        for case in (c for c in cases() if c.name in FALLBACK_CASES):
            verdict = judge_case(case)
            assert verdict.held, (case.name, verdict.problems)
    finally:
        monkeypatch.delenv(MODE_ENV)
        isolation.cache_clear()


def test_the_honest_add_passes_under_the_same_limits():
    report = run_tests("def add(a, b):\n    return a + b\n", "add", TESTS, HACK_LIMITS)
    assert report.all_passed and report.passed == len(TESTS)


def test_sandbox_check_cli_reports_isolation_and_every_case_held():
    result = CliRunner().invoke(app, ["sandbox", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["isolation"]["mode"] == isolation().mode
    assert report["cases"] == report["held"] == sum(s["cases"] for s in report["suites"].values())
    assert set(report["suites"]["calls/Python"]["by_case"]) == set(CASES)
    covered = {name.split("/")[1] for name in report["suites"] if name.startswith("stdio/")}
    assert covered == {name for name, chain in report["toolchains"].items() if chain["ok"]} - {"Go", "Ruby", "CSharp"}
    assert all(reason.startswith("not covered: ") for reason in report["not_covered"].values())


def test_forged_marker_and_exit_zero_name_why_they_failed():
    report = run_tests(CASES["forged_result_marker"].program, "add", TESTS, HACK_LIMITS)
    assert (report.passed, report.failed) == (0, 3) and report.error == "program: the candidate exited"
    report = run_tests(CASES["sleep_past_timeout"].program, "add", TESTS, HACK_LIMITS)
    assert "time limit" in report.error and "candidate: killed at the time limit" in report.contained


def test_isolation_report_names_what_holds_and_what_is_missing():
    level = isolation()
    assert level.mode in ("namespaces", "fallback")
    assert set(level.guarantees) >= {"no_network", "read_only_fs", "survivors_killed", "process_cap"}
    text = level.describe()
    assert text.startswith(f"sandbox isolation: {level.mode}") and "missing:" in text
