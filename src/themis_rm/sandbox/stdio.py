"""Run a program in any language against input/output cases: build it once, run each case in a fresh sandbox.

This is the contract of competitive-programming tests (CodeContests, LiveCodeBench, SandboxFusion's
``submit``): the program reads a case's input on stdin and the case passes when what it printed matches the
expected output. The verdict is ours, made in this process: the program sees only the input (never the expected
output, which stays in this process), its exit status must be 0, and its stdout is data compared by
:func:`outputs_match` — nothing it prints is parsed as a result. The build step (compiler or none) and every case
run under the supervisor of :mod:`.process` with the same guarantees as Python test runs; the build directory is
sealed read-only before any case runs, so one case cannot leave anything for the next but its own output.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from themis_rm.sandbox.process import (
    OUTPUT_CAP,
    Outcome,
    SandboxLimits,
    contained_notes,
    default_env,
    describe_end,
    make_workdir,
    start,
)
from themis_rm.sandbox.python import TestReport
from themis_rm.sandbox.toolchains import Toolchain, toolchain

COMPILE_LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=4096, file_mb=256, processes=64, open_files=256)
OUTPUT_SLACK = 1 << 16  # bytes a case may print beyond twice its expected output before it is cut off
COMPARES = ("lines", "tokens", "exact")


@dataclass(frozen=True)
class IOCase:
    """One case: what the program reads on stdin, and what it must print."""

    input: str
    output: str

    @classmethod
    def of(cls, case: IOCase | Mapping[str, str]) -> IOCase:
        """An :class:`IOCase`, or a mapping with ``input`` and ``output`` (the CodeContests/SandboxFusion keys)."""
        if isinstance(case, IOCase):
            return case
        missing = [key for key in ("input", "output") if not isinstance(case.get(key), str)]
        if missing:
            raise ValueError(f"an input/output case needs string fields {missing}: got keys {sorted(case)}")
        return cls(case["input"], case["output"])


def outputs_match(got: str, expected: str, compare: str = "lines") -> bool:
    """``lines``: equal after trailing whitespace on each line and trailing blank lines are dropped (what most
    judges accept); ``tokens``: equal as whitespace-separated tokens; ``exact``: byte for byte."""
    if compare == "exact":
        return got == expected
    if compare == "tokens":
        return got.split() == expected.split()
    if compare == "lines":
        return _lines(got) == _lines(expected)
    raise ValueError(f"compare must be one of {COMPARES}, got {compare!r}")


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def run_io_tests(
    program: str,
    language: str,
    cases: Iterable[IOCase | Mapping[str, str]],
    limits: SandboxLimits | None = None,
    *,
    compare: str = "lines",
    compile_limits: SandboxLimits = COMPILE_LIMITS,
) -> TestReport:
    """Build ``program`` as ``language`` and run it on every case; a program that times out on one case is not
    run on the rest (they count as failed), so a sleeping program costs one time limit, not one per case."""
    cases = [IOCase.of(case) for case in cases]
    if compare not in COMPARES:
        raise ValueError(f"compare must be one of {COMPARES}, got {compare!r}")
    limits = limits or SandboxLimits()
    with built_program(program, language, compile_limits) as program_:
        if program_.error is not None:
            return TestReport(0, len(cases), error=program_.error, contained=program_.notes)
        return _run_cases(program_, cases, limits, compare)


@dataclass
class BuiltProgram:
    """A program built once in a sealed directory (``error`` says why the build failed), run any number of
    times, each run in a fresh sandbox: what the measuring oracles time and compare run after run."""

    chain: Toolchain
    build: Path
    built: _Built | None
    error: str | None
    notes: tuple[str, ...]

    def run(self, stdin: str, limits: SandboxLimits, *, output_cap: int = OUTPUT_CAP) -> Outcome:
        """One run on ``stdin``: its exit, output (cut past ``output_cap`` bytes), CPU seconds and peak memory."""
        assert self.built is not None, self.error
        chain, built = self.chain, self.built
        argv = chain.argv(chain.run, src=built.src, out=built.out, workdir=str(self.build), memory_mb=limits.memory_mb)
        workdir = make_workdir()
        fd = _memory_file(stdin.encode("utf-8"))
        try:
            running = start(
                argv,
                workdir=workdir,
                limits=chain.widened(limits),
                stdin=fd,
                env=_env(workdir),
                timeout_s=limits.timeout_s,
            )
            return running.finish(limits.timeout_s, output_cap=output_cap)
        finally:
            os.close(fd)
            shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def built_program(
    program: str, language: str, compile_limits: SandboxLimits = COMPILE_LIMITS
) -> Iterator[BuiltProgram]:
    """``program`` built as ``language`` under the sandbox (compiled where the language compiles), removed after."""
    chain = toolchain(language)
    build = make_workdir()
    try:
        built, notes = _build(chain, program, build, compile_limits)
        if isinstance(built, str):
            yield BuiltProgram(chain, build, None, built, notes)
        else:
            yield BuiltProgram(chain, build, built, None, notes)
    finally:
        shutil.rmtree(build, ignore_errors=True)


@dataclass(frozen=True)
class _Built:
    src: str
    out: str


def _build(chain: Toolchain, program: str, build: Path, limits: SandboxLimits) -> tuple[_Built | str, tuple[str, ...]]:
    """Write the source and compile it (if the language compiles) under the sandbox; returns the built paths or
    the reason the build failed, and what the sandbox contained."""
    src = build / chain.source_name(program)
    src.write_text(program, encoding="utf-8")
    built = _Built(str(src), str(build / "main.out"))
    notes: tuple[str, ...] = ()
    if chain.compile is not None:
        argv = chain.argv(chain.compile, src=built.src, out=built.out, workdir=str(build), memory_mb=limits.memory_mb)
        running = start(argv, workdir=build, limits=chain.widened(limits), env=_env(build))
        outcome = running.finish(limits.timeout_s)
        notes = contained_notes(outcome, "compiler")
        if outcome.setup_error:
            return f"sandbox: {outcome.setup_error}", notes
        if outcome.exit_code != 0:
            message = outcome.stderr.decode(errors="replace").strip()
            reason = _first_error(message) or describe_end(outcome, limits.timeout_s)
            return f"compile: {reason}"[:500], notes
    _seal(build)
    return built, notes


def _first_error(message: str) -> str:
    lines = message.splitlines()
    return next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")


def _seal(build: Path) -> None:
    """The build directory, ours again and read-only to the runs (where a namespace does not already make it so):
    a case cannot rewrite the binary or leave notes for the next case."""
    uid = os.getuid()
    for root, dirs, files in os.walk(build):
        for name in (*dirs, *files):
            path = os.path.join(root, name)
            os.lchown(path, uid, uid)
            if not os.path.islink(path):
                os.chmod(path, (os.stat(path).st_mode & 0o755) | 0o444 | (0o111 if name in dirs else 0))
    os.chown(build, uid, uid)
    os.chmod(build, 0o755)


def _run_cases(program: BuiltProgram, cases: list[IOCase], limits: SandboxLimits, compare: str) -> TestReport:
    passed, first_failure, error = 0, None, None
    notes = program.notes
    cpu, rss = [], []
    for index, case in enumerate(cases):
        outcome = program.run(case.input, limits, output_cap=2 * len(case.output.encode("utf-8")) + OUTPUT_SLACK)
        notes += contained_notes(outcome, f"case {index}")
        cpu.append(outcome.cpu_s)
        rss.append(outcome.max_rss_kb)
        reason = _failure(outcome, case, compare, limits.timeout_s)
        if reason is None:
            passed += 1
            continue
        if first_failure is None:
            got = outcome.stdout.decode(errors="replace")
            first_failure = {"case": index, "input": case.input[:200], "expected": case.output[:200]}
            first_failure |= {"got": got[:200], "error": reason}
        if outcome.setup_error:
            error = f"sandbox: {outcome.setup_error}"
            break
        if outcome.timed_out:
            error = f"case {index}: {reason}; the remaining cases were not run"
            break
        if outcome.stray_files:
            error = f"wrote outside its directory: {', '.join(outcome.stray_files[:3])}"
            passed = 0
            break
    report = TestReport(passed, len(cases) - passed, first_failure, error, notes)
    measured = None not in cpu and None not in rss  # every case ran to its end
    return report.costs(round(sum(cpu), 6), max(rss)) if measured and cpu else report


def _memory_file(data: bytes) -> int:
    """A descriptor holding ``data`` from its start, for stdin: no file on disk, no pipe to deadlock on."""
    fd = os.memfd_create("themis-stdin", 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _failure(outcome: Outcome, case: IOCase, compare: str, timeout_s: float) -> str | None:
    """Why the case failed, or None when it passed."""
    if outcome.setup_error:
        return f"sandbox: {outcome.setup_error}"
    if outcome.timed_out or outcome.signal or outcome.exit_code != 0:
        stderr = outcome.stderr.decode(errors="replace").strip().splitlines()[-1:]
        return describe_end(outcome, timeout_s) + (f": {stderr[0][:200]}" if stderr else "")
    if outcome.output_truncated:
        return "printed far more than the expected output"
    if outcome.stray_files:
        return "wrote outside its directory"
    if not outputs_match(outcome.stdout.decode(errors="replace"), case.output, compare):
        return "wrong output"
    return None


def _env(workdir: Path) -> dict[str, str]:
    """The sandbox's environment plus the caches some toolchains insist on writing (inside the run's directory)."""
    return {**default_env(workdir), "GOCACHE": str(workdir / ".gocache"), "GOPATH": str(workdir / ".gopath")}
