"""Preference data: mine git history, filter, dedup, label, judge, assemble; and execution-verified bug pairs.

    from themis_rm.data import load_config, run_pipeline
    run_pipeline(load_config("pipeline.yaml"))

Names are imported on first use: ``themis --help`` needs no ``data`` extra.
"""

from themis_rm.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "PipelineConfig": "themis_rm.data.config",
        "load_config": "themis_rm.data.config",
        "run_pipeline": "themis_rm.data.pipeline",
        "run_mine": "themis_rm.data.pipeline",
        "MutateConfig": "themis_rm.data.bugs",
        "run_mutation": "themis_rm.data.bugs",
    },
)
