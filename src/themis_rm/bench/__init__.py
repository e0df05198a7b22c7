"""Benchmarking: CodeRewardBench pairwise accuracy and best-of-n rerank metrics, in the reference formats."""

from themis_rm.bench.metrics import (
    TIE_POLICIES,
    aggregate_rerank,
    compile_results,
    nan_count,
    pass_rates,
    read_scores_parquet,
    rerank_question_metrics,
    scores_frame,
    summarize_scores_file,
    tie_count,
    write_results_json,
    write_scores_parquet,
)

__all__ = [
    "TIE_POLICIES",
    "aggregate_rerank",
    "compile_results",
    "nan_count",
    "pass_rates",
    "read_scores_parquet",
    "rerank_question_metrics",
    "scores_frame",
    "summarize_scores_file",
    "tie_count",
    "write_results_json",
    "write_scores_parquet",
]
