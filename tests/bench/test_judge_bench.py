"""``themis bench --adapter judge`` against a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from themis_rm.bench.metrics import read_scores_parquet
from themis_rm.bench.run import BenchConfig, run_bench
from themis_rm.errors import ThemisInputError
from themis_rm.scoring.judge import JudgeUnreachableError

PAIRS = [
    ("win", "SCRIPT:boxed85", "SCRIPT:boxed7"),  # 8.5 > 7: correct
    ("lose", "SCRIPT:boxed7", "SCRIPT:boxed85"),  # wrong
    ("unparsable", "SCRIPT:boxed7", "SCRIPT:garbage"),  # NaN: counted wrong, never dropped
]


def _pairs_file(tmp_path, rows=PAIRS):
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


def test_judge_bench_scores_every_pair_counts_nan_and_keeps_raw_outputs(judge_server, tmp_path, open_layout_path):
    server, base_url = judge_server
    output = tmp_path / "run"
    config = BenchConfig(
        model="judge-tiny",
        data=str(_pairs_file(tmp_path)),
        output=output,
        adapter="judge",
        judge_url=base_url,
        prompt_pack=str(open_layout_path),
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
        criterion="none",
    )
    with pytest.raises(ThemisInputError, match="--judge-url"):
        run_bench(config)


def _judge_config(tmp_path, base_url, open_layout_path, **overrides) -> BenchConfig:
    fields = dict(
        model="judge-tiny",
        data=str(_pairs_file(tmp_path)),
        output=tmp_path / "run",
        adapter="judge",
        judge_url=base_url,
        prompt_pack=str(open_layout_path),
        judge_concurrency=2,
        checkpoint_every=1,
    )
    return BenchConfig(**(fields | overrides))


def _raw_lines(output) -> list[dict]:
    return [json.loads(line) for line in (output / "judge_raw.jsonl").read_text().splitlines()]


def test_resumed_judge_run_keeps_exactly_one_raw_answer_per_pair_and_side(judge_server, tmp_path, open_layout_path):
    _, base_url = judge_server
    config = _judge_config(tmp_path, base_url, open_layout_path)
    run_bench(config)
    # A kill after the judge answered chunks 2 and 3 but before their scores were checkpointed looks like this:
    partial = config.output / "scores.partial.jsonl"
    partial.write_text(partial.read_text().splitlines(keepends=True)[0])
    resumed = run_bench(config)
    raw = _raw_lines(config.output)
    keys = [(r["id"], r["side"]) for r in raw]
    assert len(keys) == len(set(keys)) == 6, "every pair and side exactly once"
    assert {r["variant"] for r in raw} == {"clean"}
    assert resumed.run["resumed_pairs"] == 1 and resumed.run["work"]["raw_dropped_on_resume"] == 4
    scores = read_scores_parquet(config.output / "scores.parquet")
    by_key = {(r["id"], r["side"]): r["reward"] for r in raw}
    assert by_key[("win", "chosen")] == scores.loc["win", "chosen_score"] == 8.5


def test_perturbed_judge_answers_are_tagged_with_their_kind_and_rerun_whole_on_resume(
    judge_server, tmp_path, open_layout_path
):
    _, base_url = judge_server
    config = _judge_config(tmp_path, base_url, open_layout_path, perturb=("self_praise",), hack_suite=False)
    run_bench(config)
    run_bench(config)  # resumed with every pair checkpointed: the robustness pass runs again
    raw = _raw_lines(config.output)
    clean = sorted((r["id"], r["side"]) for r in raw if r["variant"] == "clean")
    praised = sorted((r["id"], r["side"]) for r in raw if r["variant"] == "self_praise")
    assert len(raw) == 12 and clean == praised and len(set(clean)) == 6


def test_judge_sampling_flags_reach_the_requests_and_run_json(judge_server, tmp_path, open_layout_path):
    from typer.testing import CliRunner

    from themis_rm.cli import app

    server, base_url = judge_server
    output = tmp_path / "run"
    # These flags mirror BenchConfig.judge_* one to one; a 0-10 range keeps a 0 score instead of NaN.
    flags = ["--judge-temperature", "0.5", "--judge-seed", "7", "--judge-max-tokens", "99"]
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--model",
            "judge-tiny",
            "--data",
            str(_pairs_file(tmp_path)),
            "--output",
            str(output),
            "--adapter",
            "judge",
            "--judge-url",
            base_url,
            "--prompts",
            str(open_layout_path),
            *flags,
            "--judge-score-range",
            "0,10",
        ],
    )
    assert result.exit_code == 0, result.output
    body = server.bodies[0]
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.5, 7, 99)
    run = json.loads((output / "run.json").read_text())
    judge = run["judge"]
    assert (judge["temperature"], judge["seed"], judge["max_tokens"]) == (0.5, 7, 99)
    assert judge["score_range"] == [0.0, 10.0]
    assert run["engine"] == "judge" and run["numpy"] and run["pandas"] and run["pyarrow"]


def test_bad_judge_score_range_is_refused_naming_the_flag(tmp_path, open_layout_path):
    config = _judge_config(tmp_path, "http://127.0.0.1:9/v1", open_layout_path, judge_score_range="10,0")
    with pytest.raises(ThemisInputError, match=r"--judge-score-range must be 'LOW,HIGH' .* got '10,0'"):
        run_bench(config)


def test_judge_pair_without_aspect_in_aspect_mode_is_refused(judge_server, tmp_path, open_layout_path):
    _, base_url = judge_server
    path = tmp_path / "no_aspect.jsonl"
    path.write_text(json.dumps({"id": "bare", "prompt": "Write f.", "chosen": "SCRIPT:boxed7", "rejected": "x"}) + "\n")
    config = _judge_config(tmp_path, base_url, open_layout_path, data=str(path))
    with pytest.raises(ThemisInputError, match=rf"{path}:1: field 'aspect' is missing \(id 'bare'\)"):
        run_bench(config)


def test_an_unreachable_judge_fails_the_run_and_the_same_command_resumes_it(judge_server, tmp_path, open_layout_path):
    """It used to finish with "accuracy 0.00%, NaN 3" and exit 0; an answer without choices stays a counted NaN."""
    _, base_url = judge_server
    rows = [
        ("empty", "SCRIPT:boxed7", "SCRIPT:no_choices"),  # longest: judged first (length-sorted chunks)
        ("win", "SCRIPT:boxed85", "SCRIPT:boxed7"),
        ("outage", "SCRIPT:outage", "SCRIPT:boxed7"),  # 503 for two attempts, then answers
    ]
    (tmp_path / "outage").mkdir()
    data = str(_pairs_file(tmp_path / "outage", rows))
    config = _judge_config(tmp_path, base_url, open_layout_path, data=data, judge_retries=1, judge_backoff_s=0)
    with pytest.raises(JudgeUnreachableError, match=r"1 of 2 judge requests to .* got no answer after 1 retries"):
        run_bench(config)
    assert len((config.output / "scores.partial.jsonl").read_text().splitlines()) == 2  # the chunks before it
    resumed = run_bench(config)
    assert resumed.run["resumed_pairs"] == 2 and resumed.run["n_nan"] == 1
    assert resumed.run["work"]["unreachable"] == 0
    errors = {(r["id"], r["side"]): r["error"] for r in _raw_lines(config.output)}
    assert "EmptyChoices" in errors[("empty", "rejected")] and errors[("outage", "chosen")] is None
    scores = read_scores_parquet(config.output / "scores.parquet")
    assert scores.loc["outage", "chosen_score"] == 6.0
