"""Run builders: which parameters AdamW decays."""

from __future__ import annotations

import torch

from themis_rm.train.components import build_optimizer
from themis_rm.train.config import TrainConfig
from themis_rm.train.model import load_backbone


def test_weight_decay_skips_the_reward_head_norms_and_vectors(tiny_base_dir):
    config = TrainConfig().with_overrides({"weight_decay": 0.1, "fused": "off"})
    model = load_backbone(str(tiny_base_dir), dtype=torch.float32, attn_implementation="sdpa", loss=config.loss)
    optimizer = build_optimizer(model, config, torch.device("cpu"))
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    names = {id(p): name for name, p in model.named_parameters()}
    assert model.score.weight.ndim == 2 and decay[id(model.score.weight)] == 0.0  # a (1, H) matrix, not decayed
    decayed = {names[i] for i, wd in decay.items() if wd}
    assert decayed and all(model.get_parameter(n).ndim == 2 and not n.startswith("score.") for n in decayed)
    norms = [p for n, p in model.named_parameters() if "norm" in n]
    assert norms and all(decay[id(p)] == 0.0 for p in norms)
    assert len(decay) == sum(1 for p in model.parameters() if p.requires_grad)  # every trainable parameter once
