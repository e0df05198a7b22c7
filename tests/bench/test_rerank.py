"""``themis rerank`` end to end: every completion scored once, metrics as the reference defines them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from themis_rm.bench.metrics import rerank_question_metrics
from themis_rm.bench.rerank import RerankConfig, load_rerank_questions, run_rerank
from themis_rm.cli import app
from themis_rm.errors import ThemisInputError
from themis_rm.scoring import Scorer


def _questions() -> list[dict]:
    return [
        {
            "id": "q-add",
            "description": "Write add(a, b).",
            "language": "Python",
            "completions": ["def add(a, b): return a + b", "def add(a, b): return a - b", "def add(a, b): pass"],
            "num_passed": [3, 0, 0],
            "num_failed": [0, 3, 3],
            "final_verdict": [True, False, False],
        },
        {
            "id": "q-none-pass",
            "description": "Write mul(a, b).",
            "language": "Python",
            "completions": ["def mul(a, b): return a + b", "def mul(a, b): return 0"],
            "num_passed": [1, 0],
            "num_failed": [2, 3],
            "final_verdict": [False, False],
        },
        {
            "id": "q-many",
            "description": "Reverse a list.",
            "language": "Python",
            "completions": [f"def rev(xs): return xs[::{-1 if i % 2 else 1}]  # {i}" for i in range(12)],
            "num_passed": [i % 2 * 4 for i in range(12)],
            "num_failed": [4 - i % 2 * 4 for i in range(12)],
            "final_verdict": [bool(i % 2) for i in range(12)],
        },
    ]


@pytest.fixture
def rerank_file(tmp_path):
    path = tmp_path / "rerank.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in _questions()))
    return path


def test_rerank_metrics_equal_the_definitions_on_the_models_own_rewards(tiny_model_dir, rerank_file, tmp_path):
    result = run_rerank(
        RerankConfig(model=str(tiny_model_dir), data=str(rerank_file), output=tmp_path / "run", device="cpu")
    )
    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu")
    for question in _questions():
        rewards = scorer.score([question["description"]] * len(question["completions"]), question["completions"])
        expected = rerank_question_metrics(
            rewards, question["num_passed"], question["num_failed"], question["final_verdict"]
        )
        row = result.per_question.loc[question["id"]]
        for key, value in expected.items():
            # other batch shapes than the scorer's: float32 noise, relative to the metric's size (variance ~7)
            assert row[key] == pytest.approx(value, rel=1e-5, abs=1e-5, nan_ok=True), key
    overall = json.loads((tmp_path / "run" / "results.json").read_text())["overall"]
    assert overall["n_questions"] == 3 and overall["n_questions_with_positive"] == 2
    assert overall["total_completions"] == 17
    assert np.isnan(result.per_question.loc["q-none-pass", "hits_at_5"])
    assert result.per_question.loc["q-add", "hits_at_5"] == 1.0, "K capped at n: any positive is a hit"
    rewards = pd.read_parquet(tmp_path / "run" / "rewards.parquet")
    assert [len(r) for r in rewards["rewards"]] == [3, 2, 12]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["engine"] == "auto" and sum(run["engine_paths"].values()) == 1, "one engine call, its path named"
    assert run["n_prompt_truncated"] == 0 and run["numpy"] and run["pyarrow"]


def test_rerank_cli_prints_hits(tiny_model_dir, rerank_file, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "rerank",
            "--model",
            str(tiny_model_dir),
            "--data",
            str(rerank_file),
            "--output",
            str(tmp_path / "run"),
            "--device",
            "cpu",
            "--k",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 questions: hits_at_1" in " ".join(result.output.split())
    assert "uninformative" not in result.output  # K=1 is below every list size that matters


def test_rerank_warns_when_k_reaches_every_list_and_limits_questions(tiny_model_dir, tmp_path):
    path = tmp_path / "short.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in _questions()[:2]))  # lists of 3 and 2
    args = ["rerank", "--model", str(tiny_model_dir), "--data", str(path), "--device", "cpu", "--k", "1,5"]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "run"), "--limit", "1"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "1 questions:" in output and "Hits@5 is uninformative: no question has more than 3 completions" in output
    assert "Hits@1 is" not in output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["n_questions"] == 1 and len(run["warnings"]) == 1


def test_rerank_row_with_mismatched_lists_names_file_row_and_field(tmp_path):
    bad = _questions()[0] | {"num_failed": [0, 3]}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_questions()[1]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ThemisInputError, match=rf"{path}:2: field 'num_failed' must be a list with one entry"):
        load_rerank_questions(path)


def test_verdict_strings_are_parsed_strictly_so_false_stays_false(tmp_path):
    question = _questions()[0] | {"final_verdict": ["false", " PASSED ", 0]}
    path = tmp_path / "strings.jsonl"
    path.write_text(json.dumps(question) + "\n")
    (loaded,) = load_rerank_questions(path).rows
    assert loaded.final_verdict == [False, True, False]
    # Hand-computed: the top-rewarded completion fails, so Hits@1 is 0 (bool("false") would have made it 1).
    metrics = rerank_question_metrics(
        [0.9, 0.5, 0.1], loaded.num_passed, loaded.num_failed, loaded.final_verdict, ks=(1,)
    )
    assert (metrics["n_passing"], metrics["hits_at_1"]) == (1, 0.0)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([True, False, True], [True, False, True]),
        ([1, 0, 1], [True, False, True]),
        (["Fail", "TRUE", "pass"], [False, True, True]),
    ],
)
def test_accepted_verdict_spellings(tmp_path, values, expected):
    path = tmp_path / "verdicts.jsonl"
    path.write_text(json.dumps(_questions()[0] | {"final_verdict": values}) + "\n")
    assert load_rerank_questions(path).rows[0].final_verdict == expected


@pytest.mark.parametrize("bad", ["yes", 2, None, 1.0])
def test_unknown_verdict_names_file_row_field_and_entry(tmp_path, bad):
    path = tmp_path / "bad_verdict.jsonl"
    path.write_text(
        json.dumps(_questions()[1]) + "\n" + json.dumps(_questions()[0] | {"final_verdict": [True, bad, False]}) + "\n"
    )
    with pytest.raises(ThemisInputError, match=rf"{path}:2: field 'final_verdict' entry 1 is {bad!r}; use true/false"):
        load_rerank_questions(path)
