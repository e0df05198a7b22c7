"""A client for SandboxFusion's ``/run_code`` API, behind the same interface as the local sandbox.

The contract (bytedance/SandboxFusion, ``sandbox/server/sandbox_api.py``; the ``sandbox-fusion`` SDK's
``RunCodeRequest``/``RunCodeResponse``): POST ``{code, language, stdin, run_timeout, compile_timeout,
memory_limit_MB}``, answered with ``{status: Success|Failed|SandboxError, message, compile_result, run_result}``,
each result ``{status: Finished|Error|TimeLimitExceeded, execution_time, cpu_time?, return_code, stdout, stderr}``.

Only input/output cases run here, one request per case, and the comparison is ours: the server runs the program
with the case's input and we compare its stdout, so the expected output never reaches the server. Test statements
would have to run in the program's own process there (the harness a policy learns to fool), so groups with them
are refused at start-up, not run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from themis_rm.errors import ThemisInputError
from themis_rm.reward.execution import Job, JobPool, raise_unrunnable
from themis_rm.reward.groups import RewardGroup
from themis_rm.reward.spec import ExecutionSpec
from themis_rm.sandbox import TestReport
from themis_rm.sandbox.stdio import IOCase, outputs_match

LANGUAGES = {  # ours -> SandboxFusion's `language` (it builds C with its C++ runner)
    "Python": "python",
    "JavaScript": "nodejs",
    "C": "cpp",
    "Cpp": "cpp",
    "Java": "java",
    "Go": "go",
    "Ruby": "ruby",
    "CSharp": "csharp",
}
COMPILE_TIMEOUT_S = 30.0
BACKOFF_S = 0.5


class SandboxFusionExecutor:
    """Runs input/output cases on a SandboxFusion server; the verdict is made here."""

    name = "sandbox_fusion"

    def __init__(self, spec: ExecutionSpec) -> None:
        import httpx

        self.spec = spec
        self.url = spec.url.rstrip("/") + "/run_code"
        self.http = httpx.Client(timeout=spec.request_timeout_s)
        self.jobs = JobPool(spec.workers)

    def check(self, groups: Sequence[RewardGroup]) -> None:
        problems: dict[str, list[str]] = {}
        for group in groups:
            if group.test_style == "calls":
                reason = "test statements would run in the program's own process on the server; give io_cases"
                problems.setdefault(reason, []).append(group.id)
            elif group.testable and group.language not in LANGUAGES:
                problems.setdefault(f"SandboxFusion has no runner for {group.language!r}", []).append(group.id)
        raise_unrunnable(problems, self.name)

    def run(self, jobs: Sequence[Job], progress: Callable[[int], None] | None = None) -> list[TestReport]:
        return self.jobs.map(self._run_one, jobs, progress)

    def _run_one(self, job: Job) -> TestReport:
        cases = job.group.io_cases or []
        passed, first_failure, cpu = 0, None, 0.0
        for index, case in enumerate(cases):
            answer = self._post(job.program, job.group.language, case)
            reason, seconds = _judge(answer, case, self.spec.compare)
            cpu += seconds or 0.0
            if reason is None:
                passed += 1
                continue
            if first_failure is None:
                got = ((answer.get("run_result") or {}).get("stdout") or "")[:200]
                first_failure = {"case": index, "input": case.input[:200], "expected": case.output[:200], "got": got}
                first_failure["error"] = reason
            if reason.startswith("compile"):
                return TestReport(0, len(cases), first_failure, error=reason)
            if reason.startswith("timed out"):
                error = f"case {index}: {reason}; the remaining cases were not run"
                return TestReport(passed, len(cases) - passed, first_failure, error=error)
        return TestReport(passed, len(cases) - passed, first_failure, cpu_s=round(cpu, 6))

    def _post(self, program: str, language: str, case: IOCase) -> dict:
        import httpx

        body = {
            "code": program,
            "language": LANGUAGES[language],
            "stdin": case.input,
            "run_timeout": self.spec.timeout_s,
            "compile_timeout": COMPILE_TIMEOUT_S,
            "memory_limit_MB": self.spec.memory_mb,
        }
        last = ""
        for attempt in range(self.spec.retries + 1):
            try:
                response = self.http.post(self.url, json=body)
            except httpx.TransportError as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 500:
                    if response.status_code != 200:
                        raise ThemisInputError(f"{self.url} answered {response.status_code}: {response.text[:300]}")
                    answer = response.json()
                    if answer.get("status") != "SandboxError":
                        return answer
                    last = f"SandboxError: {answer.get('message', '')[:300]}"
                else:
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
            time.sleep(BACKOFF_S * 2**attempt)
        raise ThemisInputError(f"{self.url}: no answer after {self.spec.retries + 1} attempts ({last})")


def _judge(answer: dict, case: IOCase, compare: str) -> tuple[str | None, float | None]:
    """Why the case failed (None: passed), and the run's CPU (or wall) seconds as the server reports them."""
    compiled = answer.get("compile_result") or {}
    if compiled and (compiled.get("status") != "Finished" or compiled.get("return_code") not in (0, None)):
        stderr = (compiled.get("stderr") or "").strip().splitlines()
        return f"compile: {stderr[0] if stderr else compiled.get('status')}"[:300], None
    run = answer.get("run_result") or {}
    seconds = run.get("cpu_time") if run.get("cpu_time") is not None else run.get("execution_time")
    if run.get("status") == "TimeLimitExceeded":
        return "timed out", seconds
    if run.get("status") != "Finished" or run.get("return_code") != 0:
        stderr = (run.get("stderr") or "").strip().splitlines()[-1:]
        detail = f": {stderr[0][:200]}" if stderr else ""
        return f"exit status {run.get('return_code')} ({run.get('status')}){detail}", seconds
    if not outputs_match(run.get("stdout") or "", case.output, compare):
        return "wrong output", seconds
    return None, seconds
