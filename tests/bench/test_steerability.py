"""Criterion steerability (issue 16, item 3): known answers from constructed scorers, then a real bench run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from themis_rm.bench.run import BenchConfig, run_bench
from themis_rm.bench.steerability import run_steerability, steer_prompts
from themis_rm.criteria import CRITERIA
from themis_rm.packs import resolve_pack
from themis_rm.pairs import PreferencePair
from themis_rm.scoring.scorer import PairScores
from themis_rm.tiny import synthetic_pair_rows, write_pairs_jsonl


class ConstructedScorer:
    """A reward whose answer is a function of (pair, criteria): what steerability must read back."""

    def __init__(self, correct) -> None:
        self.correct = correct

    def score_pairs(self, pairs, criteria=None, progress=None) -> PairScores:
        right = np.array([self.correct(p, criteria) for p in pairs], dtype=float)
        zeros = np.zeros(len(pairs), dtype=np.int64)
        flags = np.zeros(len(pairs), dtype=bool)
        return PairScores(right * 2 - 1, np.zeros(len(pairs)), zeros, zeros, flags, flags)

    def work_counters(self) -> dict:
        return {}


@pytest.fixture(scope="module")
def pack():
    return resolve_pack("open")


def _pairs(per_aspect: int = 4) -> list[PreferencePair]:
    return [
        PreferencePair(f"{a}-{i}", "p", "c", "r", a, "Python" if i % 2 else "Go")
        for a in CRITERIA
        for i in range(per_aspect)
    ]


def test_a_model_that_ignores_the_prompt_has_zero_diagonal_advantage(pack):
    pairs = _pairs()
    report = run_steerability(ConstructedScorer(lambda p, c: p.id.endswith(("0", "1"))), pairs, pack)
    assert report["prompts"] == [*CRITERIA, "Full", "none"]
    assert all(v == 0.0 for v in report["diagonal_advantage"].values()) and report["mean_diagonal_advantage"] == 0.0
    assert report["matrix"]["Runtime_Efficiency"]["none"] == 0.5


def test_a_perfectly_steered_model_is_right_only_under_its_own_criterion(pack):
    pairs = _pairs()
    report = run_steerability(ConstructedScorer(lambda p, c: c == p.aspect), pairs, pack)
    for aspect in CRITERIA:
        row = report["matrix"][aspect]
        assert row[aspect] == 1.0 and all(row[c] == 0.0 for c in CRITERIA if c != aspect)
        assert report["diagonal_advantage"][aspect] == 1.0
    assert report["by_language"]["Go"]["mean_diagonal_advantage"] == 1.0
    assert report["tokens_computed"] == dict.fromkeys(steer_prompts(pack))  # a scorer without token counters


def test_bench_steerability_scores_every_prompt_through_the_model_and_reports_its_tokens(tiny_model_dir, tmp_path):
    data = write_pairs_jsonl(tmp_path / "pairs.jsonl", synthetic_pair_rows(20))
    config = BenchConfig(
        model=str(tiny_model_dir), data=str(data), output=tmp_path / "run", criterion="none", device="cpu",
        steerability=True, prompt_pack="open",
    )  # fmt: skip
    result = run_bench(config)
    steer = json.loads((tmp_path / "run" / "diagnostics.json").read_text())["steerability"]
    assert steer["prompts"] == [*CRITERIA, "Full", "none"]
    assert set(steer["matrix"]) <= set(CRITERIA) and all(len(row) == 7 for row in steer["matrix"].values())
    tokens = steer["tokens_computed"]
    assert all(isinstance(tokens[p], int) and tokens[p] > 0 for p in steer["prompts"])
    assert result.run["diagnostics"]["mean_diagonal_advantage"] == steer["mean_diagonal_advantage"]
    # the clean run kept its own fingerprint: criterion none never loads the pack into it
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["settings"]["pack"] is None
