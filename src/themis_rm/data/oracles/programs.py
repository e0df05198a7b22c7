"""The oracles for whole programs in C and JavaScript, judged by input/output cases in the sandbox.

Seeds are small programs written for this purpose (``data/resources/oracle_seeds.yaml``): each reads stdin,
writes stdout and has a few cases. Rewrites come from :mod:`.text_operators`; a rewrite becomes a pair when its
criterion is measured worse:

* Functional_Correctness — it fails a case the seed passes;
* Runtime_Efficiency — it passes every case, prints the same as the seed on a scaled input (``n`` pseudo-random
  integers) and is slower there: both sides built once, run interleaved ``rounds`` times each in fresh sandboxes,
  the kernel's CPU seconds of each run compared by the same one-sided Mann-Whitney U test and minimum ratio as
  the Python oracle (:func:`.measure.runtime_verdict`);
* Memory_Efficiency — the same runs on a larger input, the kernel's peak resident memory of every variant run
  at least the ratio and margin over every seed run (:func:`.measure.memory_verdict`);
* Security_Hardness — it passes every case, and the language's security analyser (clang-tidy, ESLint with
  eslint-plugin-security) flags it with a finding the seed does not have, while the seed has none;
* Readability_Maintainability — it passes every case, the language's linter finds new problems and its
  complexity is not lower.

Only languages whose toolchain is installed run (:func:`languages_here` says which and why not); the analysers a
criterion needs are checked before anything runs. JavaScript has no memory operator: V8's own heap (and the
input's strings) dwarf what a copy of the data adds, so the ratio rule cannot see it.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources

import yaml

from themis_rm.data.oracles.measure import MEASURE_LIMITS, CostRule, Measured, memory_verdict, runtime_verdict
from themis_rm.data.oracles.operators import Variant
from themis_rm.data.oracles.text_operators import (
    FUNCTIONAL,
    LANGUAGES,
    MEMORY,
    READABILITY,
    RUNTIME,
    SECURITY,
    text_variants,
)
from themis_rm.data.oracles.verify import (
    OracleResult,
    ReadabilityRule,
    newly_flagged,
    pair_row,
    readability_verdict,
    spread,
)
from themis_rm.errors import ThemisInputError
from themis_rm.sandbox.stdio import IOCase, built_program, run_io_tests

ANALYZERS = {SECURITY: ("security",), READABILITY: ("lint", "complexity")}


@dataclass(frozen=True)
class SeedProgram:
    task_id: str
    language: str
    prompt: str
    program: str
    cases: list[IOCase]
    scale: int | None = None  # n of the scaled input the timings use (runtime seeds)
    memory_scale: int | None = None  # n of the scaled input the peak-memory runs use (memory seeds)


def load_seed_programs(languages: Iterable[str] = LANGUAGES) -> list[SeedProgram]:
    """The packaged seed programs in ``languages``."""
    wanted = set(languages)
    text = (resources.files("themis_rm.data") / "resources" / "oracle_seeds.yaml").read_text(encoding="utf-8")
    seeds = []
    for index, row in enumerate(yaml.safe_load(text)):
        try:
            seed = SeedProgram(
                row["id"],
                row["language"],
                row["prompt"],
                row["program"],
                [IOCase.of(c) for c in row["cases"]],
                row.get("scale"),
                row.get("memory_scale"),
            )
        except (KeyError, ValueError) as error:
            raise ThemisInputError(f"oracle_seeds.yaml: seed {index}: {error}") from error
        if seed.language in wanted:
            seeds.append(seed)
    return seeds


def languages_here(languages: Iterable[str] = LANGUAGES) -> dict[str, str]:
    """Each of ``languages``: its toolchain's version line, or ``unavailable (why)``."""
    from themis_rm.sandbox.toolchains import available

    found = available()
    return {lang: found[lang].detail if found[lang].ok else f"unavailable ({found[lang].detail})" for lang in languages}


def scaled_input(n: int, rng_seed: int = 0) -> str:
    """``n`` on one line, then ``n`` pseudo-random integers in [0, 1000000) on the next."""
    rng = random.Random(rng_seed)
    return f"{n}\n" + " ".join(str(rng.randrange(1_000_000)) for _ in range(n)) + "\n"


@dataclass(frozen=True)
class ProgramsConfig:
    cost: CostRule = field(default_factory=CostRule)
    readability: ReadabilityRule = field(default_factory=ReadabilityRule)
    max_variants: int = 2  # per seed and criterion, one per operator first


def verify_programs(seeds: Iterable[SeedProgram], criteria: Iterable[str], config: ProgramsConfig) -> OracleResult:
    """Pairs for every seed under each criterion (the analysers a criterion needs checked first)."""
    from themis_rm.reward.static import check_analyzers

    criteria = [c for c in criteria if c in (FUNCTIONAL, RUNTIME, MEMORY, SECURITY, READABILITY)]
    seeds = list(seeds)
    check_analyzers([a for c in criteria for a in ANALYZERS.get(c, ())], {s.language for s in seeds})
    result = OracleResult()
    for seed in seeds:
        reference = run_io_tests(seed.program, seed.language, seed.cases)
        if not reference.all_passed:
            result.stats[f"programs:skipped_reference_fails:{seed.task_id}"] += 1
            continue
        for criterion in criteria:
            for variant in spread(_named(seed, criterion), config.max_variants):
                kept, evidence = _judge(seed, criterion, variant, config, result.stats)
                if kept:
                    prompt = f"{seed.prompt}\n\nWrite the whole program in {seed.language}."
                    result.pairs.append(pair_row(seed.task_id, prompt, variant, evidence, language=seed.language))
    return result


def _named(seed: SeedProgram, criterion: str) -> list[Variant]:
    """The seed's rewrites, each operator named with its language (``c_qsort_to_insertion_sort``)."""
    prefix = seed.language.lower()
    return [
        Variant(v.criterion, f"{prefix}_{v.operator}", v.site, v.reference, v.code)
        for v in text_variants(seed.program, seed.language, criterion)
    ]


def _judge(seed: SeedProgram, criterion: str, variant: Variant, config: ProgramsConfig, stats: Counter):
    key = f"{criterion}:{{}}:{variant.operator}"
    stats[key.format("tried")] += 1
    report = run_io_tests(variant.code, seed.language, seed.cases)
    if criterion == FUNCTIONAL:
        if report.all_passed:
            stats[key.format("rejected_equivalent")] += 1
            return False, {}
        stats[key.format("kept")] += 1
        return True, {"failing_case": report.first_failure, "error": report.error, "cases": len(seed.cases)}
    if not report.all_passed:
        stats[key.format("rejected_tests_fail")] += 1
        return False, {}
    if criterion in (RUNTIME, MEMORY):
        kept, evidence = _costlier(seed, criterion, variant, config.cost)
    else:
        kept, evidence = _flagged(seed, criterion, variant, config)
    stats[key.format("kept" if kept else "rejected_not_worse")] += 1
    evidence["tests"] = {"passed": report.passed, "of": len(seed.cases)}
    return kept, evidence


def _costlier(seed: SeedProgram, criterion: str, variant: Variant, rule: CostRule) -> tuple[bool, dict]:
    n = seed.scale if criterion == RUNTIME else seed.memory_scale
    if n is None:
        return False, {"reason": f"the seed has no scaled input for {criterion}"}
    rounds = rule.rounds if criterion == RUNTIME else rule.memory_rounds
    reference, worse = measure_programs(variant.reference, variant.code, seed.language, scaled_input(n), rule, rounds)
    if criterion == RUNTIME:
        kept, evidence = runtime_verdict(reference, worse, rule)
        return kept, {"scaled_n": n, "timer": "kernel CPU seconds of each sandboxed run", **evidence}
    kept, evidence = memory_verdict(reference, worse, rule)
    return kept, {"scaled_n": n, "peak": "the kernel's peak resident memory of each sandboxed run", **evidence}


def measure_programs(
    reference: str, variant: str, language: str, stdin: str, rule: CostRule, rounds: int | None = None
):
    """Both programs built once, then run on ``stdin`` alternately ``rounds`` (default ``rule.rounds``) times each,
    keeping each run's CPU seconds and peak memory; a side that runs past the limit is not run again (a censored
    sample)."""
    with built_program(reference, language) as built_reference, built_program(variant, language) as built_variant:
        sides = {"reference": (built_reference, Measured(results=[])), "variant": (built_variant, Measured(results=[]))}
        for program, measured in sides.values():
            measured.error = program.error
        for _ in range(rounds or rule.rounds):
            for program, measured in sides.values():
                if measured.error or measured.timed_out:
                    continue
                outcome = program.run(stdin, MEASURE_LIMITS)
                if outcome.timed_out:
                    measured.timed_out = True
                elif outcome.exit_code != 0 or outcome.cpu_s is None:
                    measured.error = f"exit {outcome.exit_code}: {outcome.stderr.decode(errors='replace')[-200:]}"
                else:
                    measured.seconds.append(outcome.cpu_s)
                    measured.peak_bytes.append((outcome.max_rss_kb or 0) * 1024)
                    measured.results.append(hashlib.sha256(outcome.stdout).hexdigest()[:16])
        for _, measured in sides.values():
            measured.results = sorted(set(measured.results or []))  # one output, whatever the round
    return sides["reference"][1], sides["variant"][1]


def _flagged(seed: SeedProgram, criterion: str, variant: Variant, config: ProgramsConfig) -> tuple[bool, dict]:
    from themis_rm.reward.static import analyse

    if criterion == SECURITY:
        before, after = analyse("security", [variant.reference, variant.code], [seed.language] * 2)
        new = newly_flagged(before, after)
        evidence = {"analyzer_new": new, "findings": [f for f in after.findings if f["code"] in new][:5]}
        return bool(new), evidence if new else {**evidence, "reason": "not flagged, or the seed is flagged too"}
    return readability_verdict(variant.reference, variant.code, seed.language, config.readability)
