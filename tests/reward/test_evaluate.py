"""The composite benchmark's harness: visible tests for the reward, every test for the oracle, ties split."""

from __future__ import annotations

import json

import pytest

from themis_rm.errors import ThemisInputError
from themis_rm.reward.evaluate import evaluate_variants, load_oracle_lists

RIGHT = "def add(a, b):\n    return a + b\n"
HALF = "def add(a, b):\n    return a + b if a > 0 else a - b\n"  # passes the visible test, fails a hidden one
ROW = {
    "id": "add",
    "description": "Write add(a, b).",
    "completions": [RIGHT, HALF],
    "num_passed": [2, 1],
    "num_failed": [0, 1],
    "final_verdict": [True, False],
    "entry_point": "add",
    "tests": ["assert candidate(1, 2) == 3", "assert candidate(-1, 1) == 0"],
    "reference": RIGHT,
}


def test_the_reward_sees_the_visible_tests_and_the_oracle_every_test(tmp_path):
    path = tmp_path / "lists.jsonl"
    path.write_text(json.dumps(ROW) + "\n")
    lists = load_oracle_lists(path, visible_fraction=0.5)
    assert lists.groups[0].tests == ROW["tests"][:1] and lists.passed == [[True, False]]
    results = evaluate_variants(lists, {"tests": {"components": [{"kind": "tests"}]}})
    # both pass the visible test: a tie, split evenly, against an oracle that only the first passes
    assert results["tests"]["hits_at_1"] == 0.5 and results["tests"]["runs_per_list"] == 2.0
    full = evaluate_variants(
        load_oracle_lists(path, visible_fraction=1.0), {"tests": {"components": [{"kind": "tests"}]}}
    )
    assert full["tests"]["hits_at_1"] == 1.0 and full["tests"]["spearman_mean"] == pytest.approx(1.0)


def test_lists_without_tests_name_the_row_and_how_to_get_them(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({k: v for k, v in ROW.items() if k != "tests"}) + "\n")
    with pytest.raises(ThemisInputError, match=r"old.jsonl:1: a rerank list without 'tests'"):
        load_oracle_lists(path)
