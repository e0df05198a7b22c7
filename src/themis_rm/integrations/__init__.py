"""Themis rewards inside RL frameworks' own loops: TRL reward functions, verl ``compute_score``, OpenRLHF
``reward_func``; each scores in-process or on a ``themis serve`` (:mod:`.backends`).

Importable without the ``serve`` extra (HTTP needs only ``httpx``, the ``client`` extra)::

    from themis_rm.integrations import ThemisReward
    trainer = GRPOTrainer(model, reward_funcs=ThemisReward.remote("http://rm:8000", criteria="security"), ...)
"""

from themis_rm.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ThemisReward": "themis_rm.integrations.trl",
        "ThemisCompositeReward": "themis_rm.integrations.trl",
        "trl_inputs": "themis_rm.integrations.trl",
        "HttpBackend": "themis_rm.integrations.backends",
        "LocalBackend": "themis_rm.integrations.backends",
        "RewardBackend": "themis_rm.integrations.backends",
        "RewardServerError": "themis_rm.integrations.backends",
        "backend_from": "themis_rm.integrations.backends",
        "RewardClientConfig": "themis_rm.integrations.config",
        "client_config": "themis_rm.integrations.config",
    },
)
