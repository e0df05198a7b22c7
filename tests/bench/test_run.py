"""``themis bench`` end to end: reference-format outputs, filters, tie policy, and kill/resume without loss."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from themis_rm.bench.checkpoint import CHECKPOINT_FILE
from themis_rm.bench.metrics import compile_results, read_scores_parquet
from themis_rm.bench.run import PARTIAL_FILE, BenchConfig, run_bench
from themis_rm.errors import ThemisInputError
from themis_rm.faults import CRASH_ENV
from themis_rm.tiny import synthetic_pair_rows, write_pairs_jsonl


@pytest.fixture(scope="module")
def sample_pairs(tmp_path_factory, pair_rows) -> Path:
    """60 synthetic pairs over eight languages, five aspects and three subsets, with short prompts."""
    return write_pairs_jsonl(tmp_path_factory.mktemp("pairs") / "sample.jsonl", pair_rows)


def _config(model, data, output, **overrides) -> BenchConfig:
    settings = dict(
        model=str(model),
        data=str(data),
        output=output,
        criterion="none",
        device="cpu",
        max_length=16384,
        checkpoint_every=16,
    )
    return BenchConfig(**{**settings, **overrides})


def test_outputs_are_in_the_reference_format_and_recompute_exactly(tiny_model_dir, sample_pairs, tmp_path):
    result = run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "run"))
    scores = read_scores_parquet(tmp_path / "run" / "scores.parquet")
    assert list(scores.columns) == [
        "chosen_score",
        "rejected_score",
        "correct",
        "score_diff",
        "language",
        "aspect",
        "subset",
    ]
    assert scores.index.name == "id" and len(scores) == 60
    input_ids = [json.loads(line)["id"] for line in sample_pairs.read_text().splitlines()]
    assert scores.index.tolist() == input_ids, "rows stay in dataset order"
    published = json.loads((tmp_path / "run" / "results.json").read_text())
    assert published == compile_results(scores) == result.results
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    for key in (
        "model",
        "dtype",
        "device",
        "max_length",
        "prompt_mode",
        "ties",
        "n_ties",
        "n_nan",
        "n_truncated_pairs",
        "transformers",
        "torch",
        "wall_s",
        "pairs_per_s",
        "fingerprint",
    ):
        assert key in run
    assert run["n_pairs"] == 60 and run["resumed_pairs"] == 0


def test_filters_and_limit_select_pairs(tiny_model_dir, sample_pairs, tmp_path):
    result = run_bench(
        _config(
            tiny_model_dir,
            sample_pairs,
            tmp_path / "run",
            languages=["Python", "Go"],
            aspects=["Security_Hardness"],
            limit=5,
        )
    )
    assert result.results["overall"]["total_examples"] == 5
    assert set(result.results["by_language"]) <= {"Python", "Go"}
    assert set(result.results["by_aspect"]) == {"Security_Hardness"}


def test_filter_values_are_case_insensitive_and_a_miss_lists_the_values_in_the_data(tmp_path, sample_pairs):
    from themis_rm.bench.run import select_pairs
    from themis_rm.pairs import load_pairs

    pairs = load_pairs(sample_pairs).rows
    config = _config("unused", sample_pairs, tmp_path / "r", languages=["python", "GO"])
    assert {p.language for p in select_pairs(pairs, config)} == {"Python", "Go"}
    with pytest.raises(ThemisInputError, match=r"--language pyhton matches no pair; the data has: .*Python"):
        select_pairs(pairs, _config("unused", sample_pairs, tmp_path / "r", languages=["pyhton"]))


def test_aspect_mode_scores_under_each_pairs_own_prompt(tiny_model_dir, sample_pairs, open_layout_path, tmp_path):
    config = _config(
        tiny_model_dir,
        sample_pairs,
        tmp_path / "aspect",
        criterion="aspect",
        prompt_pack=str(open_layout_path),
        limit=20,
    )
    plain = run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "plain", limit=20))
    result = run_bench(config)
    assert result.run["criteria"] == "aspect" and result.run["prompt_pack"]["name"] == open_layout_path.name
    assert result.results["overall"]["mean_score_difference"] != plain.results["overall"]["mean_score_difference"]


def test_restart_with_other_settings_is_refused(tiny_model_dir, sample_pairs, tmp_path):
    run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "run", limit=4))
    with pytest.raises(ThemisInputError, match=r"different settings or data .*max_length 16384 -> 8192"):
        run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "run", limit=4, max_length=8192))


def test_relabelled_aspects_are_not_resumed_under_the_old_prompts(tiny_model_dir, open_layout_path, tmp_path):
    """Issue 21, item 2: relabelling aspects (same ids and texts) reused every old score under the new aspect."""
    rows = [
        {"id": f"p{i}", "prompt": "Add.", "chosen": "a + b", "rejected": "a - b", "aspect": "runtime"} for i in range(4)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = {"criterion": "aspect", "prompt_pack": str(open_layout_path)}
    run_bench(_config(tiny_model_dir, data, tmp_path / "run", **options))
    data.write_text("".join(json.dumps({**r, "aspect": "security"}) + "\n" for r in rows))
    with pytest.raises(ThemisInputError, match=r"different settings or data \(pairs "):
        run_bench(_config(tiny_model_dir, data, tmp_path / "run", **options))


def test_resume_is_keyed_on_the_resolved_dtype_not_the_configured_one(tiny_model_dir, sample_pairs, tmp_path):
    # A bf16 run continued with --dtype auto on a CPU (fp32) would mix two precisions in one table.
    run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "bf16", limit=4, dtype="bf16"))
    with pytest.raises(ThemisInputError, match=r"different settings or data .*dtype 'bfloat16' -> 'float32'"):
        run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "bf16", limit=4, dtype="auto"))
    # fp32 and auto resolve to the same float32 on a CPU: same scores, so the run resumes.
    run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "fp32", limit=4, dtype="fp32"))
    resumed = run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "fp32", limit=4, dtype="auto"))
    assert resumed.run["resumed_pairs"] == 4 and resumed.run["dtype"] == "float32"
    checkpoint = json.loads((tmp_path / "fp32" / CHECKPOINT_FILE).read_text())
    assert checkpoint["settings"]["dtype"] == "float32" and checkpoint["settings"]["device"] == "cpu"


def test_a_checkpoint_from_an_older_fingerprint_version_is_refused(tiny_model_dir, sample_pairs, tmp_path):
    config = _config(tiny_model_dir, sample_pairs, tmp_path / "run", limit=4)
    run_bench(config)
    (config.output / CHECKPOINT_FILE).write_text(json.dumps({"fingerprint": "0" * 64}))  # version 1: no version key
    with pytest.raises(ThemisInputError, match=r"older themis-rm \(fingerprint version 1, not 3\)"):
        run_bench(config)


def test_pair_without_aspect_in_aspect_mode_is_refused_naming_row_and_id(tiny_model_dir, open_layout_path, tmp_path):
    rows = [
        {"id": "a", "prompt": "p", "chosen": "x", "rejected": "y", "aspect": "Security_Hardness"},
        {"id": "b", "prompt": "p", "chosen": "x", "rejected": "y"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _config(tiny_model_dir, path, tmp_path / "run", criterion="aspect", prompt_pack=str(open_layout_path))
    expected = (
        rf"{path}:2: field 'aspect' is missing \(id 'b'\); --criterion aspect needs every pair's aspect; "
        "use --criterion full/none or add the field"
    )
    with pytest.raises(ThemisInputError, match=expected):
        run_bench(config)


def test_scorer_refuses_aspect_criteria_for_a_pair_without_aspect(tiny_model_dir, open_layout_path):
    from themis_rm.pairs import PreferencePair
    from themis_rm.scoring import Scorer

    scorer = Scorer.from_pretrained(str(tiny_model_dir), device="cpu", prompts=str(open_layout_path))
    pairs = [PreferencePair("a", "p", "x", "y", aspect="Security_Hardness"), PreferencePair("b", "p", "x", "y")]
    with pytest.raises(ThemisInputError, match=r"pair 'b' \(index 1\) has no aspect; criteria 'aspect' needs"):
        scorer.score_pairs(pairs, "aspect")


@pytest.mark.parametrize("engine", ["padded", "prefix"])
def test_run_json_reports_the_engine_path_used_and_package_versions(tiny_model_dir, sample_pairs, tmp_path, engine):
    result = run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "run", limit=20, engine=engine))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    expected = {"padded": 0, "prefix": 0, "packed": 0} | {engine: 2}  # 20 pairs in chunks of 16: two calls
    assert run["engine"] == engine and run["engine_paths"] == run["work"]["engine_paths"] == expected
    assert result.run == run
    for package in ("themis_rm", "torch", "transformers", "tokenizers", "numpy", "pandas", "pyarrow"):
        assert run[package], package


def test_auto_engine_names_the_paths_it_took(tiny_model_dir, sample_pairs, tmp_path):
    run = run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "run", limit=20)).run
    assert run["engine"] == "auto" and sum(run["engine_paths"].values()) == 2
    assert set(run["engine_paths"]) == {"padded", "prefix", "packed"}


def test_prompt_cuts_are_counted_apart_from_response_cuts(tiny_model_dir, tmp_path):
    rows = [
        {"id": "short", "prompt": "Add.", "chosen": "return a + b", "rejected": "return a - b"},
        {"id": "long-prompt", "prompt": "word " * 400, "chosen": "return a + b", "rejected": "return a - b"},
        {"id": "long-answer", "prompt": "Add.", "chosen": "x = 1\n" * 200, "rejected": "return a - b"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = run_bench(_config(tiny_model_dir, path, tmp_path / "run", max_length=128)).run
    assert (run["n_truncated_pairs"], run["n_prompt_truncated_pairs"]) == (2, 1)


@pytest.mark.parametrize("policy", ["drop", "keep"])
def test_pairs_the_model_sees_as_identical_are_dropped_and_counted(tiny_model_dir, tmp_path, policy):
    """Issue 20, item 4: a cut that removes the only difference (or equal texts) leaves a pair that measures
    nothing; by default it leaves the results, is counted and its id listed; ``--identical keep`` scores it as the
    reference does (a tie)."""
    head = "x = 1\n" * 200
    rows = [
        {"id": "fine", "prompt": "Add.", "chosen": "return a + b", "rejected": "return a - b"},
        {"id": "cut-tail", "prompt": "Add.", "chosen": head + "return a + b", "rejected": head + "return a - b"},
        {"id": "same", "prompt": "Add.", "chosen": "return a + b", "rejected": "return a + b"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_bench(_config(tiny_model_dir, path, tmp_path / "run", max_length=128, identical=policy))
    run, overall = result.run, result.results["overall"]
    assert (run["n_identical_pairs"], sorted(run["identical_pair_ids"]), run["n_scored_pairs"]) == (
        2,
        ["cut-tail", "same"],
        3,
    )
    scored_ids = set(pd.read_parquet(tmp_path / "run" / "scores.parquet").index)
    if policy == "drop":
        assert (overall["total_examples"], run["n_ties"], scored_ids) == (1, 0, {"fine"})
    else:
        assert (overall["total_examples"], run["n_ties"], len(scored_ids)) == (3, 2, 3)


def test_invalid_tie_policy_is_reported_with_the_flag(tiny_model_dir, sample_pairs, tmp_path):
    with pytest.raises(ThemisInputError, match="--ties must be one of wrong, half, got 'skip'"):
        run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "run", ties="skip"))


def _bench_command(model, data, output) -> list[str]:
    return [
        sys.executable,
        "-m",
        "themis_rm.cli",
        "bench",
        "--model",
        str(model),
        "--data",
        str(data),
        "--output",
        str(output),
        "--prompts-mode",
        "none",
        "--device",
        "cpu",
        "--max-length",
        "16384",
        "--checkpoint-every",
        "4",
    ]


@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_with_no_pair_lost_or_counted_twice(tiny_model_dir, tmp_path, kill_signal):
    data = write_pairs_jsonl(tmp_path / "pairs.jsonl", synthetic_pair_rows(24))
    output = tmp_path / "run"
    total = sum(1 for _ in data.open())
    command = _bench_command(tiny_model_dir, data, output)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    crash = {**env, CRASH_ENV: f"bench.pairs:8:{kill_signal.name}"}  # dies right after the second chunk of 4
    stopped = subprocess.run(command, env=crash, capture_output=True, timeout=600)
    assert stopped.returncode != 0, "the crash point must stop the run"
    partial = output / PARTIAL_FILE
    scored_before = len(partial.read_text().splitlines())
    assert scored_before == 8, "the run stops exactly where the crash point says"
    assert not (output / "results.json").exists()
    if kill_signal == signal.SIGINT:  # Ctrl-C says where the run stopped and how to go on
        said = " ".join(stopped.stderr.decode().split())
        assert stopped.returncode == 130 and "Traceback" not in said, said[-2000:]
        assert f"interrupted: 8 of {total} pairs are checkpointed in" in said
        assert "run the same command again to resume" in said

    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    run = json.loads((output / "run.json").read_text())
    ids = [json.loads(line)["id"] for line in partial.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == total, "every pair exactly once"
    assert run["resumed_pairs"] == scored_before and run["n_pairs"] == total

    # The uninterrupted run uses the same chunks, so each pair is batched with the same neighbours.
    fresh = run_bench(_config(tiny_model_dir, data, tmp_path / "fresh", checkpoint_every=4))
    resumed_scores = read_scores_parquet(output / "scores.parquet")
    fresh_scores = read_scores_parquet(fresh.output / "scores.parquet")
    # float32 noise only: a subprocess and this process may split the same GEMMs differently (seen: 3.5e-5 rel.)
    pd.testing.assert_frame_equal(resumed_scores, fresh_scores, check_exact=False, rtol=1e-4, atol=1e-5)
    resumed_results = json.loads((output / "results.json").read_text())
    _assert_same_results(resumed_results, fresh.results)


def _assert_same_results(got, expected, where="results"):
    """Equal keys (in order), counts and labels; floats within 1e-4 (one rounding step at 4 decimals)."""
    if isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            _assert_same_results(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, abs=1e-4), where
    else:
        assert got == expected, where


@pytest.mark.real_data
def test_bench_counts_every_real_pair_per_aspect_language_and_subset(shared_dir, tiny_model_dir, tmp_path):
    pair_files = sorted((shared_dir / "data" / "pairs").glob("*.jsonl"))
    rows = [json.loads(line) for f in pair_files for line in f.read_text().splitlines() if line.strip()]
    data = tmp_path / "all_pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _config(tiny_model_dir, data, tmp_path / "run", max_length=2048, checkpoint_every=512, identical="keep")
    result = run_bench(config)
    results = result.results
    assert results["overall"]["total_examples"] == len(rows) == 2646
    for key, field in (("by_aspect", "aspect"), ("by_language", "language"), ("by_subset", "subset")):
        assert {k: v["count"] for k, v in results[key].items()} == dict(Counter(r[field] for r in rows))
    # No two texts are equal, but at 2048 tokens of the tiny tokenizer some differences lie past the cut: those
    # pairs are named, and are exact ties when kept.
    identical = set(result.run["identical_pair_ids"])
    assert 0 < len(identical) == result.run["n_identical_pairs"] < 100
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet").loc[sorted(identical)]
    assert (scores["chosen_score"] == scores["rejected_score"]).all()


def test_perturbations_are_scored_beside_the_clean_run(tiny_model_dir, sample_pairs, tmp_path):
    from themis_rm.bench.perturb import PERTURBATIONS

    result = run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "run", limit=12, perturb=("all",), seed=3))
    robustness = json.loads((tmp_path / "run" / "robustness.json").read_text())
    assert robustness["seed"] == 3 and set(robustness["kinds"]) == set(PERTURBATIONS)
    clean = result.results["overall"]["accuracy"]
    for kind, row in robustness["kinds"].items():
        perturbed = json.loads((tmp_path / "run" / "perturb" / kind / "results.json").read_text())
        assert perturbed["overall"]["total_examples"] == 12
        assert row["drop"] == pytest.approx(clean - perturbed["overall"]["accuracy"], abs=1e-4)
        assert 0 <= row["unchanged_pairs"] < 12
    assert result.run["robustness"] == robustness["kinds"]
    # The other half of robustness: the sandbox's hack suites, every installed language, all held.
    hacks = robustness["sandbox_hack_suite"]
    assert hacks["cases"] == hacks["held"] > 80 and {"calls/Python", "stdio/Python"} <= set(hacks["suites"])
    assert result.run["sandbox_hack_suite"]["held"] == hacks["held"]
    assert set(hacks["toolchains"]) == {"C", "CSharp", "Cpp", "Go", "Java", "JavaScript", "Python", "Ruby"}


def test_the_hack_suite_is_left_out_when_asked(tiny_model_dir, sample_pairs, tmp_path):
    config = _config(tiny_model_dir, sample_pairs, tmp_path / "run", limit=4, perturb=("whitespace",), hack_suite=False)
    result = run_bench(config)
    assert result.run["sandbox_hack_suite"] is None
    assert "sandbox_hack_suite" not in json.loads((tmp_path / "run" / "robustness.json").read_text())


def test_unknown_perturbation_is_refused_before_any_scoring(tiny_model_dir, sample_pairs, tmp_path):
    with pytest.raises(ThemisInputError, match="--perturb: unknown kind 'flattery'"):
        run_bench(_config(tiny_model_dir, sample_pairs, tmp_path / "run", perturb=("flattery",)))
    assert not (tmp_path / "run").exists()


def test_an_empty_file_is_named_as_empty_not_as_filtered(tiny_model_dir, tmp_path):
    """Issue 21, item 9: bench on an empty file blamed the --subset/--language filters."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ThemisInputError, match="no pairs to score: the file has no rows"):
        run_bench(_config(tiny_model_dir, empty, tmp_path / "run"))
    bad = write_pairs_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "prompt": "p", "chosen": "", "rejected": "r"}])
    with pytest.raises(ThemisInputError, match="no pairs to score: all 1 rows are invalid"):
        run_bench(_config(tiny_model_dir, bad, tmp_path / "run", skip_invalid=True))


def test_skip_invalid_scores_the_valid_pairs_and_lists_the_skipped_rows(tiny_model_dir, tmp_path):
    rows = [{"id": f"p{i}", "prompt": "Add.", "chosen": f"return {i}", "rejected": "pass"} for i in range(4)]
    rows[2]["rejected"] = 7
    data = write_pairs_jsonl(tmp_path / "pairs.jsonl", rows)
    with pytest.raises(ThemisInputError, match=r"pairs\.jsonl:3: field 'rejected' must be a string"):
        run_bench(_config(tiny_model_dir, data, tmp_path / "strict"))
    run_bench(_config(tiny_model_dir, data, tmp_path / "run", skip_invalid=True))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["n_pairs"] == 3 and run["n_skipped_rows"] == 1
    assert run["skipped_rows"] == [f"{data}:3: field 'rejected' must be a string, got int"]
