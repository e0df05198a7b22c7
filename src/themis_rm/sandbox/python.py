"""Run a program against Python test statements: the candidate and the judge in two sandboxes, joined by two pipes.

The verdict is the judge's (:mod:`.py_judge`), read from a pipe only the parent holds; the candidate only ever
answers calls with plain values. The candidate is the program's own language: :mod:`.py_candidate` for Python,
``js_candidate.js`` (node) for JavaScript, both speaking :mod:`.wire` frames of :mod:`.codec` values, so the same
tests and the same judge hold for both. See docs/architecture.md, "The test sandbox".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from themis_rm.sandbox.process import Outcome, SandboxLimits, contained_notes, describe_end, make_workdir, start
from themis_rm.sandbox.toolchains import toolchain

HERE = Path(__file__).parent
JUDGE = HERE / "py_judge.py"
CANDIDATES = {"Python": HERE / "py_candidate.py", "JavaScript": HERE / "js_candidate.js"}
MARGIN_S = 1.0  # the supervisors' clock runs this much past the judge's, so the judge can still report


@dataclass(frozen=True)
class TestReport:
    """Outcome of one program against its tests."""

    __test__ = False  # not a pytest class

    passed: int
    failed: int
    first_failure: dict | None = None
    error: str | None = None  # the program failed to load, exited, hung, or the sandbox refused it
    contained: tuple[str, ...] = ()  # what the sandbox stopped or cleaned up: files outside, timeouts, output
    cpu_s: float | None = None  # the program's CPU seconds, measured by the kernel (the candidate side only)
    peak_memory_mb: float | None = None  # the program's peak resident memory

    def costs(self, cpu_s: float | None, max_rss_kb: int | None) -> TestReport:
        """This report with the program's measured costs."""
        peak = round(max_rss_kb / 1024, 3) if max_rss_kb is not None else None
        return replace(self, cpu_s=cpu_s, peak_memory_mb=peak)

    @property
    def all_passed(self) -> bool:
        return self.error is None and self.failed == 0 and self.passed > 0


def run_tests(
    program: str,
    entry_point: str,
    tests: list[str],
    limits: SandboxLimits | None = None,
    *,
    preamble: str = "",
    language: str = "Python",
) -> TestReport:
    """Load ``program`` in a sandboxed candidate process and run each test statement in a sandboxed judge, where
    ``candidate`` (the ``entry_point``) and the program's other functions are calls over a pipe.

    ``preamble`` is test-side set-up (imports, constants, helpers) run in the judge before the tests.
    ``language`` is the program's (one of :data:`CANDIDATES`); the tests are Python either way.
    """
    if language not in CANDIDATES:
        raise ValueError(f"test statements run against {', '.join(CANDIDATES)} programs, not {language!r}")
    chain = toolchain(language)
    limits = limits or SandboxLimits()
    requests_r, requests_w = os.pipe()
    responses_r, responses_w = os.pipe()
    candidate_dir, judge_dir = make_workdir(), make_workdir()
    budget = limits.timeout_s + MARGIN_S
    try:
        script = str(CANDIDATES[language])
        argv = chain.argv(chain.run, src=script, out=script, workdir=str(candidate_dir), memory_mb=limits.memory_mb)
        candidate = start(
            [*argv, str(requests_r), str(responses_w)],
            workdir=candidate_dir,
            limits=chain.widened(limits),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            keep_fds=(requests_r, responses_w),
            timeout_s=budget,
        )
        judge = start(
            [sys.executable, "-I", str(JUDGE), str(requests_w), str(responses_r)],
            workdir=judge_dir,
            limits=limits,
            stdin=subprocess.PIPE,
            keep_fds=(requests_w, responses_r),
            timeout_s=budget,
        )
    finally:
        for fd in (requests_r, requests_w, responses_r, responses_w):
            os.close(fd)
    try:
        job = {"program": program, "preamble": preamble, "tests": tests, "entry_point": entry_point}
        _send_job(judge.process, {**job, "timeout_s": limits.timeout_s})
        judged = judge.finish(budget)
        ran = candidate.finish(budget)
    finally:
        shutil.rmtree(candidate_dir, ignore_errors=True)
        shutil.rmtree(judge_dir, ignore_errors=True)
    return _report(judged, ran, len(tests), limits).costs(ran.cpu_s, ran.max_rss_kb)


def _send_job(process: subprocess.Popen, job: dict) -> None:
    try:
        process.stdin.write(json.dumps(job).encode())
        process.stdin.close()
    except BrokenPipeError:  # the judge died at start: its outcome says why
        pass


def _report(judged: Outcome, ran: Outcome, n_tests: int, limits: SandboxLimits) -> TestReport:
    contained = contained_notes(judged, "judge") + contained_notes(ran, "candidate")
    if judged.setup_error or ran.setup_error:
        return TestReport(0, n_tests, error=f"sandbox: {judged.setup_error or ran.setup_error}", contained=contained)
    try:
        verdict = json.loads(judged.stdout)
    except ValueError:
        reason = judged.stderr.decode(errors="replace").strip().splitlines()[-1:] or [
            describe_end(judged, limits.timeout_s)
        ]
        return TestReport(0, n_tests, error=f"judge: {reason[0][:300]}", contained=contained)
    error = verdict["error"]
    if error is None and ran.stray_files:
        error = f"wrote outside its directory: {', '.join(ran.stray_files[:3])}"
    passed, failed = (0, n_tests) if error and ran.stray_files else (verdict["passed"], verdict["failed"])
    return TestReport(passed, failed, verdict["first_failure"], error, contained)
