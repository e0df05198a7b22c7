"""Execution backends for the tests and measure components: this machine's sandbox, or a SandboxFusion server.

Both take the same jobs (one program against its group's tests) and give the same :class:`TestReport`, with the
candidate's CPU time and peak memory where the backend measures them. Candidate code never runs in this process:
the local backend starts sandboxed processes (:mod:`themis_rm.sandbox`), the remote one sends the code to the
server. :meth:`Executor.check` runs at start-up and names what cannot run (a missing toolchain, a test style the
backend does not support) before any model loads or any candidate runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol

from themis_rm.errors import ThemisInputError
from themis_rm.reward.groups import RewardGroup
from themis_rm.reward.spec import ExecutionSpec
from themis_rm.sandbox import SandboxLimits, TestReport, run_tests
from themis_rm.sandbox.python import CANDIDATES
from themis_rm.sandbox.stdio import run_io_tests
from themis_rm.sandbox.toolchains import available


@dataclass(frozen=True)
class Job:
    """One program against one group's tests."""

    program: str
    group: RewardGroup


class Executor(Protocol):
    name: str

    def check(self, groups: Sequence[RewardGroup]) -> None:
        """Raise naming every group whose tests this backend cannot run here."""

    def run(self, jobs: Sequence[Job], progress: Callable[[int], None] | None = None) -> list[TestReport]:
        """Each job's report, in order."""


def build_executor(spec: ExecutionSpec) -> Executor:
    if spec.backend == "sandbox_fusion":
        from themis_rm.reward.sandbox_fusion import SandboxFusionExecutor

        return SandboxFusionExecutor(spec)
    return LocalExecutor(spec)


class LocalExecutor:
    """This machine's sandbox: calls under the Python judge, or input/output cases in any installed language."""

    name = "local"

    def __init__(self, spec: ExecutionSpec) -> None:
        self.spec = spec
        self.limits = SandboxLimits(timeout_s=spec.timeout_s, memory_mb=spec.memory_mb)
        self.jobs = JobPool(spec.workers)

    def check(self, groups: Sequence[RewardGroup]) -> None:
        found = available()
        problems = {}
        for group in groups:
            if group.test_style == "calls" and group.language not in CANDIDATES:
                problems.setdefault(
                    f"test statements run against {', '.join(CANDIDATES)} programs, not {group.language}", []
                ).append(group.id)
            elif group.testable and group.language in found and not found[group.language].ok:
                problems.setdefault(f"{group.language}: {found[group.language].detail}", []).append(group.id)
            elif group.testable and group.language not in found:
                problems.setdefault(f"no toolchain for language {group.language!r}", []).append(group.id)
        raise_unrunnable(problems, self.name)

    def run(self, jobs: Sequence[Job], progress: Callable[[int], None] | None = None) -> list[TestReport]:
        return self.jobs.map(self._run_one, jobs, progress)

    def _run_one(self, job: Job) -> TestReport:
        runs = [self._once(job) for _ in range(self.spec.repeats)]
        return _median_costs(runs)

    def _once(self, job: Job) -> TestReport:
        group = job.group
        if group.test_style == "calls":
            return run_tests(
                job.program,
                group.entry_point,
                group.tests,
                self.limits,
                preamble=group.test_preamble,
                language=group.language,
            )
        return run_io_tests(job.program, group.language, group.io_cases, self.limits, compare=self.spec.compare)


def _median_costs(runs: list[TestReport]) -> TestReport:
    """The first run's verdict with the median of the runs' costs (a repeated run only refines the measure)."""
    first = runs[0]
    if len(runs) == 1:
        return first
    cpu = [r.cpu_s for r in runs if r.cpu_s is not None]
    memory = [r.peak_memory_mb for r in runs if r.peak_memory_mb is not None]
    return replace(
        first,
        cpu_s=statistics.median(cpu) if cpu else None,
        peak_memory_mb=statistics.median(memory) if memory else None,
    )


class JobPool:
    """One thread pool per backend (each job is a subprocess or a request), shared by every call: concurrent
    callers (the server's requests) together never run more than ``workers`` jobs at once."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="themis-reward")

    def map(self, function, jobs: Sequence, progress: Callable[[int], None] | None) -> list:
        """``function`` over ``jobs``, results in order."""
        futures = [self.pool.submit(function, job) for job in jobs]
        results = []
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress(1)
        return results


def raise_unrunnable(problems: dict[str, list[str]], backend: str) -> None:
    if problems:
        lines = [f"{reason} (groups {', '.join(ids[:5])}{' ...' * (len(ids) > 5)})" for reason, ids in problems.items()]
        raise ThemisInputError(f"the {backend} execution backend cannot run these tests:\n  " + "\n  ".join(lines))
