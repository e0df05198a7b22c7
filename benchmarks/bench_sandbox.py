"""Cost of one sandboxed test run: HumanEval reference solutions against their tests.

Three ways to run the same program + tests, in the same process, interleaved per problem:

* ``bare``: ``python -I -c`` with the program and the tests in one process, no limits (what an unsafe harness
  costs, the floor);
* ``baseline`` (with ``--baseline-src DIR``): ``themis_rm.data.sandbox.run_tests`` from another checkout's
  ``src``, e.g. a ``git worktree`` of the commit before the judge/candidate sandbox;
* ``sandbox``: :func:`themis_rm.sandbox.run_tests` (two supervised processes in namespaces, the judge and the
  candidate, joined by pipes).

Prints the median and mean milliseconds per run and the ratios, and checks each way agrees that every reference
passes.

    .venv/bin/python benchmarks/bench_sandbox.py --problems 20 --repeats 3 --baseline-src /tmp/before/src
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import time

from themis_rm.data.bugs import load_problems
from themis_rm.sandbox import isolation, run_tests


def bare(program: str, tests: list[str], entry_point: str) -> bool:
    source = f"{program}\ncandidate = {entry_point}\n" + "\n".join(tests) + "\n"
    return subprocess.run([sys.executable, "-I", "-c", source], capture_output=True, check=False).returncode == 0


def load_baseline(src: str):
    sys.path.insert(0, src)
    for name in [m for m in sys.modules if m == "themis_rm" or m.startswith("themis_rm.")]:
        del sys.modules[name]
    module = importlib.import_module("themis_rm.data.sandbox")
    sys.path.remove(src)
    return module.run_tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-src", help="src/ of a checkout whose themis_rm.data.sandbox is the baseline")
    args = parser.parse_args()
    print(isolation().describe())
    problems = load_problems()[: args.problems]
    ways = {
        "bare": lambda p: bare(f"{p.preamble}\n{p.solution}", p.tests, p.entry_point),
        "sandbox": lambda p: (
            run_tests(f"{p.preamble}\n{p.solution}", p.entry_point, p.tests, preamble=p.preamble).all_passed
        ),
    }
    if args.baseline_src:
        baseline = load_baseline(args.baseline_src)
        ways["baseline"] = lambda p: baseline(f"{p.preamble}\n{p.solution}", p.entry_point, p.tests).all_passed
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for problem in problems:
            for name, way in ways.items():
                started = time.perf_counter()
                passed = way(problem)
                times[name].append(time.perf_counter() - started)
                if not passed:
                    raise SystemExit(f"{name}: the reference of {problem.task_id} did not pass")
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    for name, values in times.items():
        mean = statistics.mean(values) * 1000
        print(f"{name:9s} median {medians[name]:6.1f} ms  mean {mean:6.1f} ms  ({len(values)} runs)")
    for name in ("baseline", "bare"):
        if name in medians:
            print(f"sandbox / {name}: {medians['sandbox'] / medians[name]:.2f}x")


if __name__ == "__main__":
    main()
