"""The judge side of a Python test run: execute the tests, calling the candidate only through a pipe.

Run as ``python -I py_judge.py REQUESTS_FD RESPONSES_FD`` inside its own sandbox, with the job (program, test
preamble, tests, entry point, time budget) as JSON on stdin and its verdict as JSON on stdout — a pipe only the
parent holds. The candidate's code never runs in this process: ``candidate(...)`` and the program's other
functions are proxies that send the arguments and rebuild the answer with :mod:`.codec`, so the comparisons,
``assert`` and every builtin here are the judge's own. A candidate that exits, hangs or answers with a frame that
is not a plain value fails the test it was called from, and every later one.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's directory out

import codec
import wire

PR_SET_DUMPABLE = 4
_PASSED_THROUGH = {
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), Exception)
}


class CandidateGone(Exception):
    """The candidate exited, hung past the budget or answered with something that is not a plain value."""


class CandidateRaised(Exception):
    """The candidate raised an exception that is not a plain built-in one (or SystemExit and friends)."""


class Remote:
    """The candidate process, called one frame at a time; once it fails, every later call fails at once."""

    def __init__(self, requests: int, responses: int, deadline: float) -> None:
        self.requests, self.responses, self.deadline = requests, responses, deadline
        self.gone: str | None = None

    def load(self, program: str) -> dict:
        wire.send(self.requests, codec.dumps({"program": program}))
        return self._answer()

    def call(self, name: str, args: tuple, kwargs: dict):
        if self.gone:
            raise CandidateGone(self.gone)
        try:
            request = {"name": name, "args": codec.encode(list(args)), "kwargs": codec.encode(kwargs)}
        except codec.CodecError as error:
            raise TypeError(f"a test argument cannot be sent to the candidate: {error}") from None
        try:
            wire.send(self.requests, codec.dumps(request))
        except OSError:
            self._fail("the candidate exited")
        answer = self._answer()
        if "value" in answer:
            try:
                return codec.decode(answer["value"])
            except codec.CodecError as error:
                self._fail(f"the candidate answered with a value that is not plain: {error}")
        raised = answer.get("raised") if isinstance(answer.get("raised"), dict) else {}
        kind, message = str(raised.get("type", "?")), str(raised.get("message", ""))
        if kind in _PASSED_THROUGH:
            raise getattr(builtins, kind)(message)
        raise CandidateRaised(f"{kind}: {message}")

    def _answer(self) -> dict:
        try:
            answer = codec.loads(wire.receive(self.responses, self.deadline))
        except wire.WireTimeout:
            self._fail("the candidate did not answer within the time limit")
        except (wire.WireClosed, OSError):
            self._fail("the candidate exited")
        except (wire.FrameTooLarge, ValueError) as error:
            self._fail(f"the candidate wrote a malformed answer: {error}")
        if not isinstance(answer, dict):
            self._fail("the candidate wrote a malformed answer")
        return answer

    def _fail(self, reason: str):
        self.gone = reason
        raise CandidateGone(reason)

    def proxy(self, name: str):
        def call(*args, **kwargs):
            return self.call(name, args, kwargs)

        call.__name__ = call.__qualname__ = name
        return call


def judge(job: dict, requests: int, responses: int) -> dict:
    remote = Remote(requests, responses, time.monotonic() + job["timeout_s"])
    results = {"passed": 0, "failed": 0, "first_failure": None, "error": None}
    tests = job["tests"]
    namespace: dict = {"__name__": "__themis_tests__"}
    try:
        exec(compile(job["preamble"], "<tests preamble>", "exec"), namespace)
    except BaseException as error:
        return {**results, "failed": len(tests), "error": f"tests preamble: {type(error).__name__}: {error}"[:500]}
    try:
        loaded = remote.load(job["program"])
    except CandidateGone as gone:
        return {**results, "failed": len(tests), "error": f"program: {gone}"}
    if not loaded.get("loaded"):
        error = loaded.get("error") if isinstance(loaded.get("error"), dict) else {}
        message = f"program: {error.get('type', '?')}: {error.get('message', '')}"[:500]
        return {**results, "failed": len(tests), "error": message}
    callables = loaded.get("callables") if isinstance(loaded.get("callables"), list) else []
    for name in callables:  # the program's own functions that tests call (HumanEval's poly, encode_cyclic)
        if isinstance(name, str) and name.isidentifier() and name not in namespace and not hasattr(builtins, name):
            namespace[name] = remote.proxy(name)
    namespace["candidate"] = remote.proxy(job["entry_point"])
    for test in tests:
        try:
            exec(compile(test, "<test>", "exec"), dict(namespace))
            results["passed"] += 1
        except BaseException as error:
            results["failed"] += 1
            if results["first_failure"] is None:
                results["first_failure"] = {"test": test, "error": f"{type(error).__name__}: {error}"[:300]}
    if remote.gone:
        results["error"] = remote.gone
    return results


def main() -> None:
    # Not dumpable: where the candidate shares our uid and sees our pid (no PID namespace), it still cannot read
    # this process's memory or descriptors through /proc or ptrace.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0)
    requests, responses = int(sys.argv[1]), int(sys.argv[2])
    job = json.loads(sys.stdin.read())
    sys.stdout.write(json.dumps(judge(job, requests, responses)))


if __name__ == "__main__":
    main()
