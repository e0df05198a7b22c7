"""``themis bench --adapter judge`` against a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from themis_rm.bench.metrics import read_scores_parquet
from themis_rm.bench.run import BenchConfig, run_bench
from themis_rm.errors import ThemisInputError


def _pairs_file(tmp_path):
    rows = [
        ("win", "SCRIPT:boxed85", "SCRIPT:boxed7"),  # 8.5 > 7: correct
        ("lose", "SCRIPT:boxed7", "SCRIPT:boxed85"),  # wrong
        ("unparsable", "SCRIPT:boxed7", "SCRIPT:garbage"),  # NaN: counted wrong, never dropped
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "id": i,
                    "prompt": "Write f.",
                    "chosen": c,
                    "rejected": r,
                    "aspect": "Runtime_Efficiency",
                    "language": "Python",
                    "subset": "JUDGE",
                }
            )
            + "\n"
            for i, c, r in rows
        )
    )
    return path


def test_judge_bench_scores_every_pair_counts_nan_and_keeps_raw_outputs(judge_server, tmp_path, official_prompts_path):
    server, base_url = judge_server
    output = tmp_path / "run"
    config = BenchConfig(
        model="judge-tiny",
        data=str(_pairs_file(tmp_path)),
        output=output,
        adapter="judge",
        judge_url=base_url,
        prompts=str(official_prompts_path),
        judge_concurrency=2,
    )
    result = run_bench(config)
    assert result.results["overall"]["total_examples"] == 3
    assert result.results["overall"]["correct_predictions"] == 1
    assert result.run["n_nan"] == 1 and result.run["work"]["parse_failures"] == 1
    scores = read_scores_parquet(output / "scores.parquet")
    assert scores.loc["win", "chosen_score"] == 8.5 and scores.loc["win", "rejected_score"] == 7.0
    raw = [json.loads(line) for line in (output / "judge_raw.jsonl").read_text().splitlines()]
    assert len(raw) == 6 and {(r["id"], r["side"]) for r in raw} >= {("unparsable", "rejected")}
    assert "**Runtime Efficiency**" in server.bodies[0]["messages"][-1]["content"], "aspect criterion sent"
    assert all(body["seed"] == 0 for body in server.bodies)


def test_judge_adapter_without_url_is_refused(tmp_path):
    config = BenchConfig(
        model="judge-tiny",
        data=str(_pairs_file(tmp_path)),
        output=tmp_path / "run",
        adapter="judge",
        prompt_mode="none",
    )
    with pytest.raises(ThemisInputError, match="--judge-url"):
        run_bench(config)
