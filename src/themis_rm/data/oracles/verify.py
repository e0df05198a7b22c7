"""One oracle per Themis criterion: a rewrite becomes a preference pair only when its criterion is measured worse.

* Runtime_Efficiency — the tests pass on both sides, and the variant is slower on inputs scaled up from the tests
  (interleaved sandboxed timings, one-sided Mann-Whitney U and a minimum median ratio; :mod:`.measure`);
* Memory_Efficiency — the tests pass, and the variant's tracemalloc peak is larger by the rule on every round;
* Security_Hardness — the tests pass on both, and bandit flags the variant with a finding the reference does not
  have, while the reference has no medium or high one (blanket low notes like B404 ``import subprocess`` aside);
* Readability_Maintainability — the tests pass, ruff finds new problems in the variant and its cyclomatic
  complexity is not lower (radon's maintainability index recorded; see :class:`ReadabilityRule`).

(Functional_Correctness is :mod:`themis_rm.data.bugs`: a mutant kept when the tests fail it.) Every pair keeps its
evidence, and is tagged with the criteria on which its rejected side is in fact better (``conflicts``): a variant
that materialises a list is often *faster*, a rewrite can be slower yet cleaner; a multi-criteria reward model
must learn exactly these.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from themis_rm.criteria import CRITERIA, FUNCTIONAL_CORRECTNESS, builtin_aliases
from themis_rm.data.bugs import PROMPT_TEMPLATE, Problem
from themis_rm.data.oracles import security
from themis_rm.data.oracles.measure import CostRule, calibrated_calls, measure_pair, memory_verdict, runtime_verdict
from themis_rm.data.oracles.operators import OPERATORS, Variant, variants
from themis_rm.errors import ThemisInputError
from themis_rm.reward.groups import extract_program
from themis_rm.sandbox import SandboxLimits, run_tests

RUNTIME, MEMORY = "Runtime_Efficiency", "Memory_Efficiency"
SECURITY, READABILITY = "Security_Hardness", "Readability_Maintainability"
ORACLE_CRITERIA = (RUNTIME, MEMORY, SECURITY, READABILITY)


def resolve_criteria(names: Iterable[str]) -> tuple[str, ...]:
    """Criterion keys from names or aliases (``runtime``, ``sh``, ``all``), in canonical order."""
    lookup = {key.lower(): key for key in CRITERIA}
    lookup |= {alias: key for key, aliases in builtin_aliases().items() for alias in aliases}
    chosen = set()
    for name in names:
        lowered = name.strip().lower()
        if lowered in ("all", "full"):
            chosen |= set(CRITERIA)
        elif lowered in lookup:
            chosen.add(lookup[lowered])
        else:
            raise ThemisInputError(f"--criteria: unknown criterion {name!r} (known: {', '.join(sorted(lookup))}, all)")
    return tuple(key for key in CRITERIA if key in chosen)


@dataclass(frozen=True)
class ReadabilityRule:
    """ruff must find new problems and the cyclomatic complexity may not drop. radon's maintainability index is
    recorded but does not gate by default: on functions of a few lines its comment-ratio term dominates (two dead
    lines under a long docstring raise it by 26 points on HumanEval/2); set ``max_mi_gain`` to gate on it."""

    min_new_findings: int = 1
    max_mi_gain: float | None = None


@dataclass(frozen=True)
class OracleConfig:
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    cost: CostRule = field(default_factory=CostRule)
    readability: ReadabilityRule = field(default_factory=ReadabilityRule)
    max_variants: int = 2  # per problem and criterion (the first of each operator first)
    conflict_timing: bool = True  # time memory pairs too (a materialised list is often faster)


@dataclass
class OracleResult:
    pairs: list[dict] = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)


def verify_problem(problem: Problem, criteria: Iterable[str], config: OracleConfig) -> OracleResult:
    """Pairs for one HumanEval-style problem under each of ``criteria`` (runtime, memory, readability)."""
    result = OracleResult()
    for criterion in criteria:
        if criterion not in OPERATORS:
            continue
        found = variants(problem.solution, problem.entry_point, criterion)  # the test preamble stays test-side
        for variant in spread(found, config.max_variants):
            result.stats[f"{criterion}:tried:{variant.operator}"] += 1
            report = run_tests(
                variant.code, problem.entry_point, problem.tests, config.limits, preamble=problem.preamble
            )
            if not report.all_passed:
                result.stats[f"{criterion}:rejected_tests_fail:{variant.operator}"] += 1
                continue
            kept, evidence = _verdict(criterion, variant, problem.entry_point, problem.tests, config)
            if not kept:
                result.stats[f"{criterion}:rejected_not_worse:{variant.operator}"] += 1
                continue
            evidence["tests"] = {"passed": report.passed, "of": len(problem.tests)}
            result.stats[f"{criterion}:kept:{variant.operator}"] += 1
            result.pairs.append(
                pair_row(problem.task_id, PROMPT_TEMPLATE.format(prompt=problem.prompt), variant, evidence)
            )
    return result


def verify_security_tasks(tasks: Iterable[security.SecureTask], config: OracleConfig) -> OracleResult:
    """Security pairs from the seed tasks: bandit flags the variant and not the reference; tests pass on both."""
    import ast

    from themis_rm.reward.static import analyse

    result = OracleResult()
    for task in tasks:
        reference = ast.unparse(ast.parse(task.solution))
        if not run_tests(reference, task.entry_point, task.tests, config.limits).all_passed:
            result.stats[f"{SECURITY}:skipped_reference_fails"] += 1
            continue
        for name, rewrite in security.OPERATORS.items():
            for site, tree in enumerate(rewrite(ast.parse(task.solution))):
                variant = Variant(SECURITY, name, site, reference, ast.unparse(tree))
                result.stats[f"{SECURITY}:tried:{name}"] += 1
                report = run_tests(variant.code, task.entry_point, task.tests, config.limits)
                if not report.all_passed:
                    result.stats[f"{SECURITY}:rejected_tests_fail:{name}"] += 1
                    continue
                before, after = analyse("bandit", [reference, variant.code], ["Python", "Python"])
                new = newly_flagged(before, after)
                if not new:
                    result.stats[f"{SECURITY}:rejected_not_flagged:{name}"] += 1
                    continue
                evidence = {
                    "analyzer_new": new,
                    "findings": [f for f in after.findings if f["code"] in new][:5],
                    "reference_findings": sorted({f["code"] for f in before.findings}),
                }
                evidence["tests"] = {"passed": report.passed, "of": len(task.tests)}
                result.stats[f"{SECURITY}:kept:{name}"] += 1
                prompt = f"{task.prompt}\n\nWrite `{task.entry_point}` in Python."
                result.pairs.append(pair_row(task.task_id, prompt, variant, evidence))
    return result


def newly_flagged(secure, insecure) -> list[str]:
    """The finding codes the security analyser gives only the insecure side, or [] when the secure side is
    flagged itself: by anything for analysers without severities, by a medium or high finding for bandit (its
    blanket low notes, B404 ``import subprocess``, are not a flag on the secure side)."""
    if secure.value is None or insecure.value is None:
        return []
    if any(f.get("severity", "HIGH") in ("MEDIUM", "HIGH") for f in secure.findings):
        return []
    return sorted({f["code"] for f in insecure.findings} - {f["code"] for f in secure.findings})


def verify_security_pairs(source: str | Path, stats_prefix: str = "shared") -> OracleResult:
    """Security pairs from a CodeRewardBench-schema file (e.g. SafeCoder's vulnerability fixes) kept when the
    language's security analyser flags the rejected side and not the chosen one. Such pairs have no tests, so only
    the analyser speaks; pairs of another criterion, or in a language no analyser reads, are counted and left."""
    from themis_rm.pairs import load_pairs
    from themis_rm.reward.static import ANALYZERS, analyse, check_analyzers

    rows = [r for r in load_pairs(source).rows if r.aspect == SECURITY]
    result = OracleResult()
    readable = [r for r in rows if r.language in ANALYZERS["security"]]
    result.stats[f"{SECURITY}:{stats_prefix}_not_readable"] += len(rows) - len(readable)
    check_analyzers(["security"], {r.language for r in readable})
    by_language: dict[str, list] = {}
    for row in readable:
        by_language.setdefault(row.language, []).append(row)
    for language, group in by_language.items():
        programs = [extract_program(text) for row in group for text in (row.chosen, row.rejected)]
        found = analyse("security", programs, [language] * len(programs))
        for index, row in enumerate(group):
            secure, insecure = found[2 * index], found[2 * index + 1]
            operator = f"{stats_prefix}_{language.lower()}"
            result.stats[f"{SECURITY}:tried:{operator}"] += 1
            new = newly_flagged(secure, insecure)
            if not new:
                result.stats[f"{SECURITY}:rejected_not_flagged:{operator}"] += 1
                continue
            result.stats[f"{SECURITY}:kept:{operator}"] += 1
            evidence = {
                "criterion": SECURITY, "operator": operator, "task_id": f"{stats_prefix}/{row.id}",
                "source_id": row.id, "source_subset": row.subset, "analyzer_new": new,
                "findings": [f for f in insecure.findings if f["code"] in new][:5], "tests": None,
            }  # fmt: skip
            result.pairs.append(
                {
                    "id": f"ORACLE_{SECURITY}_{row.id}",
                    "prompt": row.prompt,
                    "chosen": row.chosen,
                    "rejected": row.rejected,
                    "aspect": SECURITY,
                    "language": language,
                    "subset": f"ORACLE_VERIFIED_{row.subset or stats_prefix.upper()}",
                    "evidence": evidence,
                    "conflicts": [],
                }
            )
    return result


def spread(found: list[Variant], k: int) -> list[Variant]:
    """Up to ``k`` variants, one per operator before a second of any."""
    by_operator: dict[str, list[Variant]] = {}
    for variant in found:
        by_operator.setdefault(variant.operator, []).append(variant)
    picked = []
    while len(picked) < k and any(by_operator.values()):
        for group in by_operator.values():
            if group and len(picked) < k:
                picked.append(group.pop(0))
    return picked


def _verdict(criterion: str, variant: Variant, entry_point: str, tests: list[str], config: OracleConfig):
    if criterion == READABILITY:
        return readability_verdict(variant.reference, variant.code, "Python", config.readability)
    size, calls = calibrated_calls(variant.reference, entry_point, tests, config.cost)
    if not calls:
        return False, {"reason": "no test call scales up"}
    mode = "memory" if criterion == MEMORY else "time"
    reference, worse = measure_pair(variant.reference, variant.code, entry_point, calls, mode, config.cost)
    judge = memory_verdict if criterion == MEMORY else runtime_verdict
    kept, evidence = judge(reference, worse, config.cost)
    evidence = {"scaled_size": size, "scaled_calls": len(calls), **evidence}
    if kept and criterion == MEMORY and config.conflict_timing:
        faster = _faster_variant(variant, entry_point, calls, config.cost)
        if faster is not None:
            evidence["conflict_runtime"] = faster
    return kept, evidence


def _faster_variant(variant: Variant, entry_point: str, calls: list[str], rule: CostRule) -> dict | None:
    """Evidence that the variant is significantly *faster* than the reference (a conflict), else None."""
    worse_ref, better_var = measure_pair(variant.code, variant.reference, entry_point, calls, "time", rule)
    slower, evidence = runtime_verdict(worse_ref, better_var, replace(rule, min_ratio=1.1))
    return evidence if slower else None  # "the reference is slower than the variant"


def readability_verdict(reference: str, code: str, language: str, rule: ReadabilityRule) -> tuple[bool, dict]:
    """Less readable by the rule? The language's linter must find new problems (ruff for Python, ESLint,
    clang-tidy) and its complexity may not drop; radon's maintainability index is recorded for Python."""
    from themis_rm.reward.static import analyse

    programs, languages = [reference, code], [language, language]
    lint_ref, lint_var = analyse("lint", programs, languages)
    cc_ref, cc_var = analyse("complexity", programs, languages)
    new = len(lint_var.findings) - len(lint_ref.findings)
    complexity_gain = (cc_ref.value or 0.0) - (cc_var.value or 0.0)  # the values are -complexity
    mi_rule = f" and maintainability gain <= {rule.max_mi_gain}" if rule.max_mi_gain is not None else ""
    evidence = {
        "lint_new_findings": new,
        "lint_new_codes": sorted({f["code"] for f in lint_var.findings} - {f["code"] for f in lint_ref.findings}),
        "complexity_delta": complexity_gain,
        "rule": f">= {rule.min_new_findings} new lint findings and no lower complexity{mi_rule}",
    }
    kept = new >= rule.min_new_findings and complexity_gain >= 0
    if language == "Python":
        mi_ref, mi_var = analyse("maintainability", programs, languages)
        mi_gain = (mi_var.value or 0.0) - (mi_ref.value or 0.0)
        evidence["maintainability_delta"] = round(mi_gain, 3)
        if rule.max_mi_gain is not None:
            kept = kept and mi_gain <= rule.max_mi_gain
    return kept, evidence if kept else {**evidence, "reason": "not measurably less readable"}


def pair_row(task_id: str, prompt: str, variant: Variant, evidence: dict, *, language: str = "Python") -> dict:
    """A CodeRewardBench row: the operator is the subset; evidence and conflicts ride along."""
    return {
        "id": f"ORACLE_{variant.criterion}_{task_id.replace('/', '_')}_{variant.operator}_{variant.site}",
        "prompt": prompt,
        "chosen": variant.reference,
        "rejected": variant.code,
        "aspect": variant.criterion,
        "language": language,
        "subset": f"{'MUTANT' if variant.criterion == FUNCTIONAL_CORRECTNESS else 'ORACLE'}_{variant.operator.upper()}",
        "evidence": {"criterion": variant.criterion, "operator": variant.operator, "task_id": task_id, **evidence},
        "conflicts": [RUNTIME] if "conflict_runtime" in evidence else [],
    }


def tag_conflicts(pairs: list[dict]) -> list[dict]:
    """Add the criteria whose static measure prefers the rejected side (fewer lint or security findings: ruff and
    bandit for Python) to each pair's ``conflicts``; one analyser run per language per batch."""
    from themis_rm.reward.static import analyse

    programs = [text for pair in pairs for text in (pair["chosen"], pair["rejected"])]
    languages = [pair.get("language", "Python") for pair in pairs for _ in range(2)]
    for analyzer, criterion in (("lint", READABILITY), ("security", SECURITY)):
        results = analyse(analyzer, programs, languages) if programs else []
        for index, pair in enumerate(pairs):
            chosen, rejected = results[2 * index], results[2 * index + 1]
            better = chosen.value is not None and rejected.value is not None and rejected.value > chosen.value
            if better and criterion != pair["aspect"] and criterion not in pair["conflicts"]:
                pair["conflicts"].append(criterion)
    return pairs
