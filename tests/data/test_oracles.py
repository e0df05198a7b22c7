"""One oracle per criterion, in both directions: a kept pair really is slower / larger / flagged / less readable
(measured again here), a rejected rewrite really is not; the pairs carry their evidence and conflicts."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from themis_rm.cli import app
from themis_rm.data.bugs import Problem
from themis_rm.data.oracles import security
from themis_rm.data.oracles.measure import CostRule, measure_pair, scaled_calls
from themis_rm.data.oracles.operators import Variant, variants
from themis_rm.data.oracles.verify import (
    MEMORY,
    READABILITY,
    RUNTIME,
    OracleConfig,
    readability_verdict,
    resolve_criteria,
    tag_conflicts,
    verify_problem,
    verify_security_tasks,
)
from themis_rm.errors import ThemisInputError

CONFIG = OracleConfig(max_variants=3, conflict_timing=False)


def _problem(task_id: str, solution: str, entry_point: str, tests: list[str]) -> Problem:
    return Problem(task_id, f"def {entry_point}(...):\n", solution, entry_point, "", tests)


def test_a_quadratic_sort_is_kept_slower_and_a_sort_of_three_items_is_not():
    sort_all = _problem(
        "T/sort", "def f(xs):\n    return sorted(xs)\n", "f", ["assert candidate([3, 1, 2]) == [1, 2, 3]"]
    )
    result = verify_problem(sort_all, [RUNTIME], CONFIG)
    (pair,) = result.pairs
    assert pair["aspect"] == RUNTIME and pair["subset"] == "ORACLE_SORTED_TO_INSERTION_SORT"
    evidence = pair["evidence"]
    assert evidence["tests"] == {"passed": 1, "of": 1}
    if evidence.get("censored"):  # at the largest size the quadratic side ran past the limit the reference met
        assert evidence["variant_seconds"].endswith("(timed out)")
    else:
        assert evidence["p_value"] < 0.01 and evidence["median_ratio"] >= 1.5
    # measured again, independently, at a size both finish: the rejected side is slower
    calls = scaled_calls(sort_all.tests, 2000)
    reference, variant = measure_pair(pair["chosen"], pair["rejected"], "f", calls, "time", CostRule(rounds=3))
    assert statistics.median(variant.seconds) > 1.5 * statistics.median(reference.seconds)

    three = _problem(
        "T/three", "def f(xs):\n    return sorted(xs[:3])\n", "f", ["assert candidate([3, 1, 2, 9]) == [1, 2, 3]"]
    )
    result = verify_problem(three, [RUNTIME], CONFIG)
    assert result.pairs == [] and result.stats[f"{RUNTIME}:rejected_not_worse:sorted_to_insertion_sort"] == 1


def test_a_materialised_list_is_kept_larger_and_a_three_item_one_is_not():
    total = _problem(
        "T/total", "def f(xs):\n    return sum(x * 2 for x in xs)\n", "f", ["assert candidate([1, 2]) == 6"]
    )
    (pair,) = verify_problem(total, [MEMORY], CONFIG).pairs
    assert pair["subset"] == "ORACLE_GENERATOR_TO_LIST" and "[x * 2 for x in xs]" in pair["rejected"]
    peaks = pair["evidence"]
    assert min(peaks["variant_peak_bytes"]) >= 1.5 * max(peaks["reference_peak_bytes"])
    small = _problem(
        "T/small", "def f(xs):\n    return max(x for x in xs[:3])\n", "f", ["assert candidate([1, 5, 2, 9]) == 5"]
    )
    result = verify_problem(small, [MEMORY], CONFIG)
    assert result.pairs == [] and result.stats[f"{MEMORY}:rejected_not_worse:generator_to_list"] == 1


def test_security_pairs_are_flagged_by_bandit_only_on_the_insecure_side():
    result = verify_security_tasks(security.TASKS, CONFIG)
    kept = {pair["evidence"]["operator"]: pair for pair in result.pairs}
    assert {"literal_eval_to_eval", "safe_load_to_load", "parameters_to_formatting", "sha256_to_md5"} <= set(kept)
    assert kept["literal_eval_to_eval"]["evidence"]["analyzer_new"] == ["B307"]
    assert "eval(text)" in kept["literal_eval_to_eval"]["rejected"]
    # bandit has no rule for a path join without normalisation: the oracle refuses it rather than guess
    assert "normalised_join_to_plain" not in kept
    assert result.stats["Security_Hardness:rejected_not_flagged:normalised_join_to_plain"] == 1


def test_readability_pairs_add_ruff_findings_and_an_unchanged_rewrite_is_refused():
    code = "def f(numbers):\n    total = 0\n    for value in numbers:\n        total += value\n    return total\n"
    problem = _problem("T/sum", code, "f", ["assert candidate([1, 2]) == 3"])
    pairs = {p["evidence"]["operator"]: p for p in verify_problem(problem, [READABILITY], CONFIG).pairs}
    assert "E741" in pairs["ambiguous_names"]["evidence"]["lint_new_codes"]
    assert pairs["ambiguous_names"]["evidence"]["lint_new_findings"] >= 1
    same = Variant(READABILITY, "none", 0, code, code)
    kept, evidence = readability_verdict(same.reference, same.code, "Python", CONFIG.readability)
    assert not kept and evidence["reason"] == "not measurably less readable"


def test_operators_keep_the_rest_of_the_program_and_the_test_preamble_out_of_the_pair():
    code = "def f(xs):\n    seen = set(xs)\n    return [x for x in range(5) if x in seen]\n"
    (variant,) = [v for v in variants(code, "f", RUNTIME) if v.operator == "set_membership_to_list"]
    assert "seen = list(xs)" in variant.code and variant.code.replace("list(xs)", "set(xs)") == variant.reference


def test_conflicts_name_the_criteria_the_rejected_side_is_better_on():
    pair = {
        "aspect": RUNTIME,
        "chosen": "import os\n\n\ndef f():\n    l = 1\n    return l\n",
        "rejected": "def f():\n    return 1\n",
        "conflicts": [],
    }
    (tagged,) = tag_conflicts([pair])
    assert tagged["conflicts"] == [READABILITY]


def test_criteria_names_resolve_and_unknown_ones_are_refused():
    assert resolve_criteria(["runtime", "sh"]) == (RUNTIME, "Security_Hardness")
    assert len(resolve_criteria(["all"])) == 5
    with pytest.raises(ThemisInputError, match="unknown criterion 'speed'"):
        resolve_criteria(["speed"])


def test_mutate_with_every_oracle_writes_pairs_of_each_criterion_with_evidence(tmp_path):
    problems = tmp_path / "problems.jsonl"
    rows = [
        {
            "task_id": "T/0",
            "prompt": "def f(xs):\n",
            "canonical_solution": "    total = sum(x * 1000 for x in xs)\n    return sorted(xs) + [total]\n",
            "entry_point": "f",
            "test": "def check(candidate):\n    assert candidate([2, 1]) == [1, 2, 3000]\n"
            "    assert candidate([]) == [0]\n",
        }
    ]
    problems.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    args = [
        "data",
        "mutate",
        "-o",
        str(out),
        "--problems",
        str(problems),
        "--criteria",
        "all",
        "--holdout-fraction",
        "0",
    ]
    result = CliRunner().invoke(app, [*args, "--no-conflict-timing"])
    assert result.exit_code == 0, result.output
    pairs = [json.loads(line) for line in (out / "train_pairs.jsonl").read_text().splitlines()]
    aspects = {pair["aspect"] for pair in pairs}
    assert aspects == {"Functional_Correctness", RUNTIME, MEMORY, READABILITY, "Security_Hardness"}
    assert all("evidence" in pair or pair["aspect"] == "Functional_Correctness" for pair in pairs)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["criteria"][0] == "Functional_Correctness" and stats[f"train_pairs_{RUNTIME}"] >= 1
    bad = CliRunner().invoke(app, ["data", "mutate", "-o", str(out), "--criteria", "speed"])
    assert bad.exit_code == 2 and "--criteria must be one of" in bad.output


def test_renaming_leaves_names_that_nested_scopes_bind_as_parameters():
    code = "def f(words):\n    table = {'a': 1}\n    return sorted([x for x in words], key=lambda x: table[x])\n"
    (variant,) = [v for v in variants(code, "f", READABILITY) if v.operator == "ambiguous_names"]
    assert "key=lambda x: l[x]" in variant.code and "for x in words" in variant.code
