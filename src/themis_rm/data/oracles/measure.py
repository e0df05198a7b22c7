"""Measured cost of a program on inputs scaled up from its tests: repeated, interleaved, tested for significance.

The calls are the literal ``candidate(...)`` calls of the problem's tests, with every list, tuple and string
argument repeated until it holds about ``size`` items (numbers are left alone: an exponential function stays
feasible). A call the reference cannot answer at that size is dropped. Each side runs in its own sandboxed process
(:mod:`.harness`), reference and variant alternating ``rounds`` times; the variant is slower when a one-sided
Mann-Whitney U test gives ``p < alpha`` and the median ratio is at least ``min_ratio`` (both recorded, with the
timings). Memory is tracemalloc's peak over the calls, which is deterministic for the same code and inputs, so
it is checked on every round instead of tested. Both sides must print the same results on the scaled inputs.
"""

from __future__ import annotations

import ast
import json
import math
import shutil
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE

from scipy.stats import mannwhitneyu

from themis_rm.sandbox.process import SandboxLimits, make_workdir, start

HARNESS = Path(__file__).with_name("harness.py")
MEASURE_LIMITS = SandboxLimits(timeout_s=5.0, memory_mb=2048)


@dataclass(frozen=True)
class CostRule:
    """When a variant counts as costlier than its reference."""

    sizes: tuple[int, ...] = (250, 1000, 4000, 16000)  # items per scaled sequence argument, tried in order
    target_seconds: float = 0.02  # the first size at which the reference's calls take this long is used
    rounds: int = 5  # processes per side for timing, interleaved (5 + 5 is the least that can reach p < 0.01)
    memory_rounds: int = 3  # tracemalloc peaks are deterministic: a few rounds confirm it
    inner: int = 3  # call-set repetitions per timing process (the best is kept)
    alpha: float = 0.01
    min_ratio: float = 1.5
    min_seconds: float = 0.0005  # a reference faster than this gives no signal to test
    min_extra_bytes: int = 64 << 10


def scaled_calls(tests: list[str], size: int) -> list[str]:
    """Sources of the argument tuples of every literal ``candidate(...)`` call in ``tests``, scaled."""
    calls = []
    for test in tests:
        for node in ast.walk(ast.parse(test)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "candidate" and not node.keywords:
                try:
                    args = tuple(ast.literal_eval(arg) for arg in node.args)
                except ValueError:
                    continue
                scaled = tuple(_scale(arg, size) for arg in args)
                if scaled != args:
                    calls.append(repr(scaled))
    return list(dict.fromkeys(calls))


def _scale(value, size: int):
    if isinstance(value, list | tuple | str) and 0 < len(value) < size:
        return value * math.ceil(size / len(value))
    return value


@dataclass
class Measured:
    """One side's samples, or why it could not be measured."""

    seconds: list[float] = field(default_factory=list)
    peak_bytes: list[int] = field(default_factory=list)
    results: list[str] | None = None
    error: str | None = None
    timed_out: bool = False  # a censored sample: at least the time limit


def run_harness(program: str, entry_point: str, calls: list[str], mode: str, inner: int) -> dict:
    """One sandboxed harness run."""
    workdir = make_workdir()
    try:
        running = start([sys.executable, "-I", str(HARNESS)], workdir=workdir, limits=MEASURE_LIMITS, stdin=PIPE)
        job = {"program": program, "entry_point": entry_point, "calls": calls, "mode": mode, "inner": inner}
        try:
            running.process.stdin.write(json.dumps(job).encode())
            running.process.stdin.close()
        except BrokenPipeError:
            pass
        outcome = running.finish(MEASURE_LIMITS.timeout_s)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if outcome.timed_out:
        return {"error": f"timed out after {MEASURE_LIMITS.timeout_s:g} s", "timed_out": True}
    try:
        return json.loads(outcome.stdout)
    except ValueError:
        return {"error": f"harness failed: {outcome.stderr.decode(errors='replace')[-300:]}"}


def calibrated_calls(program: str, entry_point: str, tests: list[str], rule: CostRule) -> tuple[int, list[str]]:
    """The scaled calls to measure with: at the first size where the reference needs ``target_seconds`` (or the
    largest it answers), keeping only the calls it answers without raising (a scaled input can leave a
    function's domain). ``(0, [])`` when no call scales."""
    chosen: tuple[int, list[str]] = (0, [])
    for size in rule.sizes:
        calls = scaled_calls(tests, size)
        answer = run_harness(program, entry_point, calls, "probe", 1) if calls else {"error": "no call"}
        if "error" in answer:
            break
        kept = [call for call, ok in zip(calls, answer["answered"], strict=True) if ok]
        if not kept:
            break
        chosen = (size, kept)
        if answer["seconds"] >= rule.target_seconds:
            break
    return chosen


def measure_pair(reference: str, variant: str, entry_point: str, calls: list[str], mode: str, rule: CostRule):
    """Interleaved samples of both sides: ``(reference, variant)`` as :class:`Measured`."""
    sides = (Measured(), Measured())
    for _ in range(rule.memory_rounds if mode == "memory" else rule.rounds):
        for side, program in zip(sides, (reference, variant), strict=True):
            if side.error:
                continue
            answer = run_harness(program, entry_point, calls, mode, rule.inner)
            if "error" in answer:
                side.error, side.timed_out = answer["error"], answer.get("timed_out", False)
                continue
            if side.results is not None and side.results != answer["results"]:
                side.error = "results changed between runs"
            side.results = answer["results"]
            if mode == "memory":
                side.peak_bytes.append(answer["peak_bytes"])
            else:
                side.seconds.append(answer["seconds"])
        if any(side.error for side in sides):
            break
    return sides


def runtime_verdict(reference: Measured, variant: Measured, rule: CostRule) -> tuple[bool, dict]:
    """Slower by the rule? With the evidence: timings, medians, spread, ratio, p-value. A variant that runs past
    the time limit where the reference finished far inside it is slower (a censored sample, recorded so)."""
    limit = MEASURE_LIMITS.timeout_s
    if variant.timed_out and not reference.error and reference.seconds:
        ratio = limit / max(reference.seconds)
        evidence = {"reference_seconds": reference.seconds, "variant_seconds": f">= {limit:g} (timed out)"}
        evidence |= {"median_ratio": f">= {ratio:.1f}", "censored": True}
        return ratio >= rule.min_ratio, evidence
    evidence = _common(reference, variant)
    if "reason" in evidence:
        return False, evidence
    ref, var = statistics.median(reference.seconds), statistics.median(variant.seconds)
    p = float(mannwhitneyu(reference.seconds, variant.seconds, alternative="less").pvalue)
    evidence |= {
        "reference_seconds": [round(s, 6) for s in reference.seconds],
        "variant_seconds": [round(s, 6) for s in variant.seconds],
        "median_ratio": round(var / ref, 3) if ref > 0 else None,
        "reference_iqr": _iqr(reference.seconds),
        "variant_iqr": _iqr(variant.seconds),
        "p_value": round(p, 6),
        "rule": f"one-sided Mann-Whitney U p < {rule.alpha} and median ratio >= {rule.min_ratio}",
    }
    if ref < rule.min_seconds:
        return False, {**evidence, "reason": f"the reference takes under {rule.min_seconds * 1000:g} ms: no signal"}
    slower = p < rule.alpha and var / ref >= rule.min_ratio
    return slower, evidence if slower else {**evidence, "reason": "not measurably slower"}


def memory_verdict(reference: Measured, variant: Measured, rule: CostRule) -> tuple[bool, dict]:
    """Larger by the rule on every round? With the evidence."""
    evidence = _common(reference, variant)
    if "reason" in evidence:
        return False, evidence
    ref, var = max(reference.peak_bytes), min(variant.peak_bytes)  # the variant's smallest beats the largest ref
    evidence |= {
        "reference_peak_bytes": reference.peak_bytes,
        "variant_peak_bytes": variant.peak_bytes,
        "ratio": round(var / ref, 3) if ref else None,
        "rule": f"every variant peak >= {rule.min_ratio}x and +{rule.min_extra_bytes} bytes over every reference peak",
    }
    larger = var >= rule.min_ratio * ref and var - ref >= rule.min_extra_bytes
    return larger, evidence if larger else {**evidence, "reason": "not measurably larger"}


def _common(reference: Measured, variant: Measured) -> dict:
    if reference.error:
        return {"reason": f"the reference could not be measured: {reference.error}"}
    if variant.error:
        return {"reason": f"the variant could not be measured: {variant.error}"}
    if reference.results != variant.results:
        return {"reason": "the variant answers differently on the scaled inputs"}
    return {}


def _iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return round(q[2] - q[0], 6)
