"""Run untrusted Python against its tests in a child process: never in the parent, bounded in time and memory.

Each program runs in a fresh ``python -I`` subprocess (isolated mode: no user site, no ``PYTHON*`` variables) with
its own temporary working directory, a wall-clock timeout, ``setrlimit`` caps on address space, CPU time, file
size and open files, an empty environment, and no network: the child enters a new network namespace when the
kernel allows it (``unshare(CLONE_NEWNET)``), and in every case ``socket`` is replaced before the program runs.
Each ``assert`` of the test function runs separately, so results report how many tests passed and which failed
first — what reranking needs (pass rates) and what a kept mutant records.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from themis_rm.config import setting

_CLONE_NEWNET = 0x40000000

# Runs inside the child: block sockets, exec the program, then each test statement on its own.
_RUNNER = r"""
import json, socket, sys
def _blocked(*args, **kwargs):
    raise OSError("network access is disabled in the themis-rm sandbox")
socket.socket = socket.create_connection = socket.socketpair = _blocked
payload = json.loads(sys.stdin.read())
namespace = {"__name__": "__themis_sandbox__"}
results = {"passed": 0, "failed": 0, "first_failure": None, "error": None}
try:
    exec(compile(payload["program"], "<program>", "exec"), namespace)
except BaseException as exc:
    results["error"] = f"program: {type(exc).__name__}: {exc}"[:500]
else:
    candidate = namespace.get(payload["entry_point"])
    for test in payload["tests"]:
        try:
            exec(compile(test, "<test>", "exec"), {**namespace, "candidate": candidate})
            results["passed"] += 1
        except BaseException as exc:
            results["failed"] += 1
            if results["first_failure"] is None:
                results["first_failure"] = {"test": test, "error": f"{type(exc).__name__}: {exc}"[:300]}
sys.stdout.write("\n__THEMIS_RESULT__" + json.dumps(results))
"""


@dataclass(frozen=True)
class SandboxLimits:
    """Caps on one run; the defaults suit HumanEval-sized problems."""

    timeout_s: float = setting(10.0, "Wall-clock limit per test run.", gt=0)
    memory_mb: int = setting(1024, "Address-space cap per test run.", ge=1)
    cpu_s: int | None = setting(None, "CPU-time cap per test run; default: the wall-clock limit + 1 s.", ge=1)
    file_mb: int = setting(16, "Largest file a test run may write.", ge=1)

    @property
    def cpu_limit_s(self) -> int:
        """``cpu_s``, or the whole seconds of ``timeout_s`` plus one: a busy loop ends by the clock, not by CPU."""
        return self.cpu_s if self.cpu_s is not None else int(self.timeout_s) + 1


@dataclass(frozen=True)
class TestReport:
    """Outcome of one program against its tests."""

    passed: int
    failed: int
    first_failure: dict | None = None
    error: str | None = None  # the program itself failed, timed out or was killed

    @property
    def all_passed(self) -> bool:
        return self.error is None and self.failed == 0 and self.passed > 0


def _limit_child(limits: SandboxLimits):
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb << 20, limits.memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_limit_s, limits.cpu_limit_s))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb << 20, limits.file_mb << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        # A private network namespace has only a down loopback: nothing is reachable. Where the kernel refuses
        # (unprivileged), unshare returns -1 and the socket shim in the runner still blocks Python networking.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).unshare(_CLONE_NEWNET)

    return apply


def run_tests(program: str, entry_point: str, tests: list[str], limits: SandboxLimits | None = None) -> TestReport:
    """Execute ``program`` then each test statement (``candidate`` = ``entry_point``) in a sandboxed child."""
    limits = limits or SandboxLimits()
    payload = json.dumps({"program": program, "entry_point": entry_point, "tests": tests})
    with tempfile.TemporaryDirectory(prefix="themis-sandbox-") as workdir:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", _RUNNER],
                input=payload,
                capture_output=True,
                text=True,
                cwd=workdir,
                env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
                timeout=limits.timeout_s,
                preexec_fn=_limit_child(limits),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return TestReport(0, len(tests), error=f"timed out after {limits.timeout_s:g} s")
    marker = done.stdout.rfind("__THEMIS_RESULT__")
    if marker < 0:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return TestReport(0, len(tests), error=f"killed or crashed: {reason[0][:300]}")
    result = json.loads(done.stdout[marker + len("__THEMIS_RESULT__") :])
    return TestReport(result["passed"], result["failed"], result["first_failure"], result["error"])
