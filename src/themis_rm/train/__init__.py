"""Training Bradley-Terry code reward models: config, model and loss, data, the accelerate loop, export.

    from themis_rm.train import TrainConfig, run_training
    config = TrainConfig(model="Qwen/Qwen3-0.6B-Base", data="pairs.jsonl", output=Path("runs/rm"))
    run_training(config)

Names are imported on first use, so ``themis --help`` (which builds the train options from ``TrainConfig``)
stays fast.
"""

from themis_rm.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "TrainConfig": "themis_rm.train.config",
        "load_recipe": "themis_rm.train.config",
        "run_training": "themis_rm.train.loop",
        "TrainSummary": "themis_rm.train.session",
        "RewardModel": "themis_rm.train.model",
        "load_backbone": "themis_rm.train.model",
        "decoder_layer_classes": "themis_rm.train.model",
        "export_state_dict": "themis_rm.train.export",
    },
)
