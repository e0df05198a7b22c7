"""Reward server for RL loops: OpenRLHF ``/get_reward``, vLLM's pooling API (``/classify``, ``/score``, ...),
structured ``/v1/rewards``.

Public API (imported on first use, so ``themis --help`` loads without the ``serve`` extra)::

    from themis_rm.serve import ServeSettings, create_app
    app = create_app(ServeSettings(model="project-themis/Themis-RM-8B"))
"""

from themis_rm.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "create_app": "themis_rm.serve.app",
        "RewardService": "themis_rm.serve.service",
        "Scored": "themis_rm.serve.service",
        "CriteriaScored": "themis_rm.serve.service",
        "ServeSettings": "themis_rm.serve.settings",
        "load_settings": "themis_rm.serve.settings",
        "MicroBatcher": "themis_rm.serve.batcher",
        "BatchLimits": "themis_rm.serve.batcher",
        "QuerySplitter": "themis_rm.serve.queries",
        "ServeMetrics": "themis_rm.serve.metrics",
    },
)
