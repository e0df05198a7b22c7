"""Benchmarking: CodeRewardBench pairwise accuracy and best-of-n rerank metrics, in the reference formats.

    from themis_rm.bench import BenchConfig, run_bench
    run_bench(BenchConfig(model="project-themis/Themis-RM-8B", data="pairs.jsonl", output=Path("runs/rm")))

Names are imported on first use: the configs load without pandas or torch.
"""

from themis_rm.lazy import lazy_exports

_METRICS = (
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
)

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(_METRICS, "themis_rm.bench.metrics"),
        "BenchConfig": "themis_rm.bench.config",
        "BenchResult": "themis_rm.bench.run",
        "run_bench": "themis_rm.bench.run",
        "RerankConfig": "themis_rm.bench.rerank",
        "run_rerank": "themis_rm.bench.rerank",
        "build_report": "themis_rm.bench.report",
    },
)
