"""Reward server for RL loops: OpenRLHF ``/get_reward``, vLLM-style ``/classify``, structured ``/v1/score``.

Public API (imported on first use, so ``themis_rm.serve.cli`` loads without the ``serve`` extra)::

    from themis_rm.serve import ServeSettings, create_app
    app = create_app(ServeSettings(model="project-themis/Themis-RM-8B"))
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
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
    "serve": "themis_rm.serve.cli",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'themis_rm.serve' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
