"""Mutation operators and execution-verified pairs: kept mutants really fail, rejected ones really pass."""

from __future__ import annotations

import difflib
import json

import pytest

from themis_rm.data.bugs import MutateConfig, load_problems, run_mutation, split_tests
from themis_rm.data.mutate import OPERATORS, mutants
from themis_rm.sandbox import run_tests

SOLUTION = '''def clip_sum(values, limit):
    """Sum the values below the limit."""
    total = 0
    for i in range(len(values)):  # walk every value
        if values[i] < limit and values[i] > 0:
            total += values[i]
        else:
            total = total
    return max(total, 0)
'''


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]


@pytest.mark.parametrize("operator", list(OPERATORS))
def test_every_operator_makes_a_one_site_edit_that_keeps_the_rest_of_the_code(operator):
    found = mutants(SOLUTION, "clip_sum", [operator])
    assert found, f"{operator} found no site"
    for mutant in found:
        changed = _changed_lines(SOLUTION, mutant.code)
        assert 1 <= len([line for line in changed if line.startswith("-")]) <= 2
        assert '"""Sum the values below the limit."""' in mutant.code and "# walk every value" in mutant.code
        assert "((" not in mutant.code, "no parentheses the original did not have"


def test_operators_never_touch_the_signature_or_docstring():
    for mutant in mutants(SOLUTION, "clip_sum"):
        assert mutant.code.splitlines()[:2] == SOLUTION.splitlines()[:2]


def test_split_tests_gives_one_test_per_assert_and_keeps_the_preamble():
    preamble, tests = split_tests(
        "import math\nX = 1\n\ndef check(candidate):\n    assert candidate(1) == 1\n    assert candidate(2) == 2\n"
    )
    assert tests == ["assert candidate(1) == 1", "assert candidate(2) == 2"]
    assert "import math" in preamble and "X = 1" in preamble


@pytest.fixture(scope="module")
def mutation_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("mutate")
    stats = run_mutation(MutateConfig(output=output, limit=12, max_mutants_per_problem=5, seed=1))
    return output, stats


@pytest.fixture(scope="module")
def problems():
    """The problems of ``mutation_run`` (the first 12), by task id."""
    return {p.task_id: p for p in load_problems()[:12]}


def _split_rows(output, kind: str, splits: tuple[str, ...] = ("train", "heldout")) -> list[dict]:
    """The rows of ``<split>_<kind>.jsonl`` for each of ``splits``, in that order."""
    return [
        json.loads(line) for split in splits for line in (output / f"{split}_{kind}.jsonl").read_text().splitlines()
    ]


def _passes(problems: dict, task_id: str, code: str) -> bool:
    """Whether ``code`` passes every test of problem ``task_id`` (from the ``problems`` fixture)."""
    problem = problems[task_id]
    return run_tests(f"{problem.preamble}\n{code}", problem.entry_point, problem.tests).all_passed


def test_kept_mutants_fail_their_tests_and_references_pass(mutation_run, problems):
    output, stats = mutation_run
    pairs = _split_rows(output, "pairs")
    assert pairs and len(pairs) == stats["train_pairs"] + stats["heldout_pairs"]
    for pair in pairs[:10]:
        task_id = pair["meta"]["task_id"]
        assert _passes(problems, task_id, pair["chosen"]) and not _passes(problems, task_id, pair["rejected"])
        assert pair["meta"]["failing_test"] or pair["meta"]["error"]
        assert pair["subset"] == f"MUTANT_{pair['meta']['operator'].upper()}"
        assert pair["aspect"] == "Functional_Correctness" and pair["language"] == "Python"


def test_rejected_equivalent_mutants_still_pass_their_tests(mutation_run, problems):
    output, _ = mutation_run
    rows = _split_rows(output, "rerank")
    survivors = [(row, i) for row in rows for i, ok in enumerate(row["final_verdict"]) if ok and i > 0]
    for row, i in survivors:
        assert _passes(problems, row["id"], row["completions"][i])
    for row in rows:
        assert row["final_verdict"][0] is True, "the reference comes first and passes"
        assert len(row["completions"]) == len(row["num_passed"]) == len(row["num_failed"])


def test_splits_share_no_problem_and_counts_add_up(mutation_run):
    output, stats = mutation_run
    ids = {split: {row["id"] for row in _split_rows(output, "rerank", (split,))} for split in ("train", "heldout")}
    assert not ids["train"] & ids["heldout"]
    assert stats["train_problems"] + stats["heldout_problems"] + stats.get("skipped_reference_fails", 0) == 12
    kept = sum(v for k, v in stats.items() if k.startswith("kept_"))
    assert kept == stats["train_pairs"] + stats["heldout_pairs"]
