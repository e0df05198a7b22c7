"""Bench metrics: reference runs reproduce byte for byte; hand-computed ties, NaN, rounding and rerank."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from themis_rm.bench.metrics import (
    SCORE_COLUMNS,
    aggregate_rerank,
    compile_results,
    nan_count,
    pair_credit,
    pass_rates,
    read_scores_parquet,
    rerank_question_metrics,
    scores_frame,
    summarize_scores_file,
    tie_count,
    write_results_json,
    write_scores_parquet,
)
from themis_rm.errors import ThemisInputError

REFERENCE_KEYS = ["overall", "by_aspect", "by_language", "by_subset"]
OVERALL_KEYS = [
    "accuracy",
    "total_examples",
    "correct_predictions",
    "mean_score_difference",
    "median_score_difference",
    "std_score_difference",
]
# REFERENCE-NOTES §5.2/§5.4, computed there independently of this code.
NOTES_TIES = {"AceCodeRM-32B": 1152, "R3-Qwen3-8B-14k": 3540, "Themis-RM-8B": 0, "Themis-RM-0.6B": 0}
NOTES_NAN_PAIRS = {"R3-Qwen3-8B-14k": 267, "Themis-RM-8B": 0}
# Ties and NaN pairs at 0.5 (the notes' policy, not ours: see the test below).
NOTES_HALF_ACCURACY_X100 = {"AceCodeRM-32B": 69.45, "R3-Qwen3-8B-14k": 64.70, "Themis-RM-8B": 89.78}


def _nested_items(value):
    """Dict items all the way down, as lists, so == also checks key order."""
    if isinstance(value, dict):
        return [(key, _nested_items(item)) for key, item in value.items()]
    return value


def _frame(chosen, rejected, aspect=None, language=None, subset=None):
    n = len(chosen)
    return scores_frame(
        [f"ID_{i}" for i in range(n)],
        chosen,
        rejected,
        language or ["Python"] * n,
        aspect or ["Functional_Correctness"] * n,
        subset or ["HUMANEVAL_PACK"] * n,
    )


# --------------------------------------------------------------------------- conformance with the reference


@pytest.fixture(scope="module")
def reference_runs(shared_dir) -> dict[str, Path]:
    runs = sorted((shared_dir / "reference" / "evaluation_runs").iterdir())
    runs = {run.name: run for run in runs if (run / "scores.parquet").is_file()}
    assert runs, "no reference runs with scores.parquet under shared/reference/evaluation_runs"
    return runs


def _layout(name: str) -> str:
    """The layout each published run was written in: R3's script adds parse-failure columns."""
    return "r3" if name.startswith("R3-") else "standard"


@pytest.fixture(scope="module")
def reference_tables(reference_runs) -> dict[str, pd.DataFrame]:
    return {name: read_scores_parquet(run / "scores.parquet") for name, run in reference_runs.items()}


def test_recomputed_results_equal_published_for_every_reference_run(reference_runs, reference_tables):
    mismatched = []
    for name, run in reference_runs.items():
        published = json.loads((run / "results.json").read_text(encoding="utf-8"))
        recomputed = compile_results(reference_tables[name], layout=_layout(name))
        if _nested_items(recomputed) != _nested_items(published):
            mismatched.append(name)
    assert mismatched == []


def test_written_results_json_is_byte_identical_to_published_for_every_run(reference_runs, tmp_path):
    # Achievable: the reference wrote json.dump(indent=2) with no trailing newline, and our floats are the
    # same float64 values, so their repr is the same.
    mismatched = []
    for name, run in reference_runs.items():
        results = summarize_scores_file(run / "scores.parquet", layout=_layout(name))
        written = write_results_json(results, tmp_path / name / "results.json")
        if written.read_bytes() != (run / "results.json").read_bytes():
            mismatched.append(name)
    assert mismatched == []


def test_r3_run_reports_parse_failure_fields_in_reference_order(reference_tables):
    r3 = [name for name, df in reference_tables.items() if "parse_failed" in df.columns]
    if not r3:
        pytest.skip("no R3-style reference run in shared/")
    results = compile_results(reference_tables[r3[0]], layout="r3")
    assert [*results] == [*REFERENCE_KEYS, "parse_failures"]
    assert [*results["overall"]] == [
        "accuracy",
        "accuracy_valid_only",
        *OVERALL_KEYS[1:],
        "valid_pairs",
        "total_parse_failures",
        "parse_failure_rate",
    ]


def test_lmunit_layout_counts_scores_of_zero_as_parse_failures_per_sequence():
    """LMUnit's script scores an unparsable answer 0.0 (its scale is 1-5) and reports failures per sequence;
    checked by hand here, and byte for byte against the published LMUnit-qwen2.5-72b run (docs/benchmarks.md)."""
    df = _frame([0.0, 3.0, 5.0, 2.0], [1.0, 0.0, 0.0, 4.0])  # three 0.0 scores over eight sequences
    overall = compile_results(df, layout="lmunit")["overall"]
    assert [*overall] == [*OVERALL_KEYS[:3], "parse_failures", "parse_failure_rate", *OVERALL_KEYS[3:]]
    assert overall["parse_failures"] == 3 and overall["parse_failure_rate"] == 0.375
    assert overall["accuracy"] == 0.5 and overall["mean_score_difference"] == 1.25  # over every pair
    assert "parse_failures" not in compile_results(df)["overall"]  # standard: a 0.0 is a score


def test_a_layout_that_does_not_fit_the_table_is_refused_not_guessed():
    flagged = _frame([1.0], [0.0]).assign(parse_failed=False)
    with pytest.raises(ThemisInputError, match="--format r3"):
        compile_results(flagged)
    with pytest.raises(ThemisInputError, match="needs the 'parse_failed' column"):
        compile_results(_frame([1.0], [0.0]), layout="r3")
    with pytest.raises(ThemisInputError, match="--format must be one of standard, r3, lmunit"):
        compile_results(_frame([1.0], [0.0]), layout="cerm")


def test_tie_and_nan_counts_match_reference_notes(reference_tables):
    checked = 0
    for name, expected in NOTES_TIES.items():
        if name in reference_tables:
            assert tie_count(reference_tables[name]) == expected, name
            checked += 1
    for name, expected in NOTES_NAN_PAIRS.items():
        if name in reference_tables:
            assert nan_count(reference_tables[name]) == expected, name
    assert checked, "none of the runs the notes count ties for is present"


def test_half_tie_policy_matches_reference_notes_leaderboard_up_to_nan_credit(reference_tables):
    # The notes gave NaN pairs 0.5 too; our "half" gives them 0, so add their half credit back to compare.
    checked = 0
    for name, expected in NOTES_HALF_ACCURACY_X100.items():
        if name in reference_tables:
            df = reference_tables[name]
            notes_credit = pair_credit(df, "half").sum() + 0.5 * nan_count(df)
            assert round(notes_credit / len(df) * 100, 2) == expected, name
            checked += 1
    assert checked, "none of the runs the notes give a half-tie accuracy for is present"


def test_half_tie_policy_gives_nan_pairs_no_credit_on_the_r3_reference_run(reference_tables):
    if "R3-Qwen3-8B-14k" not in reference_tables:
        pytest.skip("R3-Qwen3-8B-14k is not in shared/")
    df = reference_tables["R3-Qwen3-8B-14k"]
    # 3833 strict wins + 0.5 * 3540 finite ties, over 8866 pairs; the 267 NaN pairs earn nothing.
    assert (len(df), int(df["correct"].sum()), tie_count(df), nan_count(df)) == (8866, 3833, 3540, 267)
    assert compile_results(df, ties="half", layout="r3")["overall"]["accuracy"] == round(5603 / 8866, 4) == 0.632


# --------------------------------------------------------------------------- pairwise, hand-computed


def test_ties_are_wrong_by_default_and_half_under_half_policy_while_nan_is_always_wrong():
    df = _frame([2.0, 1.0, 1.0, math.nan, math.nan], [1.0, 1.0, 2.0, 0.0, math.nan])  # win, tie, loss, 2 NaN
    wrong = compile_results(df)["overall"]
    half = compile_results(df, ties="half")["overall"]
    assert wrong["accuracy"] == 0.2
    assert half["accuracy"] == 0.3  # (1 + 0.5 + 0 + 0 + 0) / 5: NaN == NaN is no tie
    assert wrong["correct_predictions"] == half["correct_predictions"] == 1
    assert (tie_count(df), nan_count(df)) == (1, 2)
    by_aspect = compile_results(df, ties="half")["by_aspect"]
    assert by_aspect == {"Functional_Correctness": {"accuracy": 0.3, "count": 5}}


@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract")  # inf - inf in score_diff
def test_infinite_equal_scores_are_no_tie_and_earn_no_half_credit():
    df = _frame([math.inf, 1.0], [math.inf, 1.0])
    assert pair_credit(df, "half").tolist() == [0.0, 0.5]
    assert tie_count(df) == 1


def test_invalid_tie_policy_error_names_flag_and_value():
    with pytest.raises(ThemisInputError, match=r"--ties must be 'wrong' or 'half', got 'skip'"):
        compile_results(_frame([1.0], [0.0]), ties="skip")


def test_nan_score_is_incorrect_counted_and_left_out_of_score_diff_stats():
    df = _frame([3.0, math.nan, 1.0], [1.0, 0.0, 1.0])
    assert df["correct"].tolist() == [True, False, False]
    assert (nan_count(df), tie_count(df)) == (1, 1)
    overall = compile_results(df)["overall"]
    assert overall["accuracy"] == 0.3333
    assert overall["mean_score_difference"] == 1.0  # mean of 2.0 and 0.0; the NaN diff is skipped
    assert overall["std_score_difference"] == 1.4142  # pandas ddof=1 over the two


def test_breakdown_keys_are_sorted_by_label_bytes_whatever_the_input_order():
    df = _frame([1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0], aspect=["b", "a", "C", "a"])
    by_aspect = compile_results(df)["by_aspect"]
    assert list(by_aspect.items()) == [
        ("C", {"accuracy": 1.0, "count": 1}),
        ("a", {"accuracy": 0.5, "count": 2}),
        ("b", {"accuracy": 1.0, "count": 1}),
    ]


def test_accuracy_rounds_with_numpy_half_even_like_the_reference():
    # 1/160 = 0.00625: Python's float round gives 0.0063, numpy's (used by the reference) 0.0062.
    df = _frame([1.0] + [0.0] * 159, [0.0] * 160)
    results = compile_results(df)
    assert results["overall"]["accuracy"] == 0.0062
    assert results["by_subset"]["HUMANEVAL_PACK"]["accuracy"] == 0.0062


def test_parse_failed_table_adds_r3_fields_and_takes_score_diff_over_valid_pairs():
    df = _frame([5.0, 2.0, math.nan, 4.0], [1.0, 3.0, 2.0, 4.0])
    df["score_diff"] = df["score_diff"].fillna(0.0)  # the R3 script writes 0.0 for a parse failure
    df["parse_failed"] = [False, False, True, False]
    results = compile_results(df, layout="r3")
    overall = results["overall"]
    assert overall["accuracy"] == 0.25
    assert overall["accuracy_valid_only"] == 0.3333
    assert (overall["valid_pairs"], overall["total_parse_failures"]) == (3, 1)
    assert overall["parse_failure_rate"] == 0.25
    assert overall["mean_score_difference"] == 1.0  # (4 - 1 + 0) / 3, the failure's 0.0 left out
    assert overall["median_score_difference"] == 0.0
    assert results["parse_failures"] == 1


def test_results_of_plain_table_have_reference_keys_in_order():
    results = compile_results(_frame([1.0, 0.0], [0.0, 1.0]))
    assert [*results] == REFERENCE_KEYS
    assert [*results["overall"]] == OVERALL_KEYS


def test_undefined_statistics_are_written_as_null_without_trailing_newline(tmp_path):
    results = compile_results(_frame([1.0], [0.0]))  # std of one diff is NaN
    assert results["overall"]["std_score_difference"] is None
    text = write_results_json({"overall": {"spearman": float("nan")}}, tmp_path / "r.json").read_text()
    assert text == '{\n  "overall": {\n    "spearman": null\n  }\n}'


def test_scores_frame_round_trips_through_parquet_keeping_id_index_and_dtypes(tmp_path):
    df = scores_frame(
        ["HUMANEVAL_PACK_a", "COMMIT_PREFS_b"],
        [0.5, -1.0],
        [0.25, 2.0],
        ["Python", "Go"],
        ["Functional_Correctness", "Security_Hardness"],
        ["HUMANEVAL_PACK", "COMMITPREFS_SECURITY"],
    )
    back = read_scores_parquet(write_scores_parquet(df, tmp_path / "run" / "scores.parquet"))
    pd.testing.assert_frame_equal(back, df)
    assert back.index.name == "id"
    assert back.dtypes.astype(str).to_dict() == {
        "chosen_score": "float64",
        "rejected_score": "float64",
        "correct": "bool",
        "score_diff": "float64",
        "language": "str",
        "aspect": "str",
        "subset": "str",
    }
    assert [*back.columns] == [*SCORE_COLUMNS]
    assert back["correct"].tolist() == [True, False]
    assert back["score_diff"].tolist() == [0.25, -3.0]


def test_scores_frame_rejects_mismatched_lengths_and_duplicate_ids():
    with pytest.raises(ThemisInputError, match="ids=2, chosen=1"):
        scores_frame(["a", "b"], [1.0], [0.0, 0.0], ["Go"] * 2, ["x"] * 2, ["y"] * 2)
    with pytest.raises(ThemisInputError, match="id 'a' appears more than once"):
        scores_frame(["a", "a"], [1.0, 1.0], [0.0, 0.0], ["Go"] * 2, ["x"] * 2, ["y"] * 2)


def test_read_scores_parquet_error_names_file_and_missing_column(tmp_path):
    path = tmp_path / "scores.parquet"
    _frame([1.0], [0.0]).drop(columns=["subset"]).to_parquet(path)
    with pytest.raises(ThemisInputError, match=r"scores\.parquet: missing column\(s\) subset"):
        read_scores_parquet(path)


# --------------------------------------------------------------------------- rerank, hand-computed


def test_hits_at_k_breaks_reward_ties_by_original_order():
    rewards = [1.0, 1.0, 0.5]
    first_fails = rerank_question_metrics(rewards, [0, 3, 0], [3, 0, 3], [False, True, False], ks=(1, 2))
    assert (first_fails["hits_at_1"], first_fails["hits_at_2"]) == (0.0, 1.0)
    first_passes = rerank_question_metrics(rewards, [3, 0, 0], [0, 3, 3], [True, False, False], ks=(1,))
    assert first_passes["hits_at_1"] == 1.0


def test_hits_at_k_tie_break_is_stable_on_longer_lists():
    # Past 16 items numpy's default argsort (quicksort) puts index 3 first here; a stable sort keeps 2.
    rewards = [1, 1, 2, 2, 1, 1, 1, 2, 0, 1, 0, 1, 2, 1, 1, 2, 1, 2, 0, 1]
    verdict = [i == 2 for i in range(len(rewards))]
    passed = [int(v) for v in verdict]
    row = rerank_question_metrics(rewards, passed, [1 - n for n in passed], verdict, ks=(1,))
    assert row["hits_at_1"] == 1.0


def test_hits_at_k_is_capped_at_the_number_of_completions():
    row = rerank_question_metrics([3.0, 2.0, 1.0], [0, 0, 1], [1, 1, 0], [False, False, True], ks=(1, 5, 10))
    assert (row["hits_at_1"], row["hits_at_5"], row["hits_at_10"]) == (0.0, 1.0, 1.0)


def test_question_without_passing_completion_has_nan_hits_excluded_from_the_mean():
    hit = rerank_question_metrics([2.0, 1.0], [1, 0], [0, 1], [True, False], ks=(1,))
    miss = rerank_question_metrics([2.0, 1.0], [0, 1], [1, 0], [False, True], ks=(1,))
    none = rerank_question_metrics([2.0, 1.0], [0, 0], [1, 1], [False, False], ks=(1,))
    assert math.isnan(none["hits_at_1"])
    agg = aggregate_rerank(pd.DataFrame([hit, miss, none]))
    assert (agg["n_questions"], agg["n_questions_with_positive"], agg["total_completions"]) == (3, 2, 6)
    assert agg["hits_at_1"] == 0.5


def test_spearman_is_nan_for_single_completion_constant_rewards_or_constant_pass_rates():
    assert math.isnan(rerank_question_metrics([1.0], [1], [0], [True])["spearman"])
    assert math.isnan(rerank_question_metrics([1.0, 1.0], [1, 0], [0, 1], [True, False])["spearman"])
    assert math.isnan(rerank_question_metrics([2.0, 1.0], [1, 1], [0, 0], [True, True])["spearman"])


def test_spearman_uses_average_ranks_for_tied_pass_rates():
    verdict = [False, False, False, True]
    row = rerank_question_metrics([1.0, 2.0, 3.0, 4.0], [0, 1, 1, 2], [2, 1, 1, 0], verdict)
    assert row["spearman"] == pytest.approx(4.5 / math.sqrt(5 * 4.5))  # ranks 1,2,3,4 vs 1,2.5,2.5,4


def test_reward_variance_and_std_are_population_statistics():
    row = rerank_question_metrics([1.0, 2.0, 3.0, 4.0], [1] * 4, [0] * 4, [True] * 4)
    assert (row["reward_mean"], row["reward_variance"]) == (2.5, 1.25)
    assert row["reward_std"] == pytest.approx(math.sqrt(1.25))
    assert (row["n_completions"], row["n_passing"]) == (4, 4)


def test_pass_rate_is_zero_for_a_completion_without_tests():
    np.testing.assert_array_equal(pass_rates([0, 1, 3], [0, 1, 0]), [0.0, 0.5, 1.0])


def test_aggregate_rerank_uses_reference_keys_rounding_and_sample_std():
    rows = [
        rerank_question_metrics([0.0, 1.0], [0, 1], [1, 0], [False, True]),  # variance 0.25, spearman 1
        rerank_question_metrics([0.0, 2.0], [1, 0], [0, 1], [True, False]),  # variance 1.0, spearman -1
        rerank_question_metrics([5.0] * 3, [0] * 3, [1] * 3, [False] * 3),  # variance 0, no spearman
    ]
    agg = aggregate_rerank(pd.DataFrame(rows))
    assert list(agg.items()) == [
        ("n_questions", 3),
        ("n_questions_with_positive", 2),
        ("total_completions", 7),
        ("reward_variance_mean", 0.416667),
        ("reward_variance_median", 0.25),
        ("reward_variance_std", round(float(np.std([0.25, 1.0, 0.0], ddof=1)), 6)),
        ("hits_at_5", 1.0),
        ("hits_at_10", 1.0),
        ("spearman_mean", 0.0),
        ("spearman_median", 0.0),
    ]


def test_aggregate_rerank_writes_strict_json_with_null_for_undefined_spearman(tmp_path):
    row = rerank_question_metrics([1.0, 1.0], [1, 0], [0, 1], [True, False])
    agg = aggregate_rerank(pd.DataFrame([row]))
    assert agg["spearman_mean"] is None and agg["reward_variance_std"] is None
    text = write_results_json({"overall": agg}, tmp_path / "results.json").read_text()
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))["overall"] == agg


def test_rerank_question_metrics_rejects_mismatched_lengths():
    with pytest.raises(ThemisInputError, match="rewards=2, num_passed=1"):
        rerank_question_metrics([1.0, 2.0], [1], [0, 0], [True, False])
