"""Export a trained :class:`RewardModel` as a standard ``AutoModelForSequenceClassification`` (num_labels=1).

The shell is built on the meta device (no second full copy in RAM, unlike the reference's fp32 CPU shell) and
filled with ``load_state_dict(strict=True, assign=True)``: a missing or unexpected key is an error, not a warning.
The LM head is not part of the reward model; when untied it is written beside it as ``lm_head.safetensors`` so a
PT export can start the PM stage with the LM loss (``load_backbone`` picks it up).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch

from themis_rm.errors import ThemisError
from themis_rm.train.model import LM_HEAD_FILE

logger = logging.getLogger(__name__)


class ExportError(ThemisError):
    """The trained weights do not map one to one onto the sequence-classification model."""


def export_state_dict(
    state_dict: dict[str, torch.Tensor], config, tokenizer, output_dir: str | Path, dtype: torch.dtype
) -> Path:
    """Write ``state_dict`` (RewardModel keys: ``<prefix>.*``, ``score.weight``, ``lm_head.weight``) as a seq-cls model.

    Args:
        state_dict: full (gathered) weights, e.g. ``accelerator.get_state_dict(model)`` on the main process.
        config: the backbone's config; copied, never modified.
        dtype: dtype of the saved weights.
    """
    from transformers import AutoModelForSequenceClassification

    output_dir = Path(output_dir)
    config = copy.deepcopy(config)
    config.num_labels = 1
    config.problem_type = "regression"
    config.pad_token_id = tokenizer.pad_token_id
    config.use_cache = False
    lm_head = state_dict.get("lm_head.weight")
    weights = {k: v.to(dtype) for k, v in state_dict.items() if not k.startswith("lm_head.")}
    with torch.device("meta"):
        shell = AutoModelForSequenceClassification.from_config(config, dtype=dtype)
    expected = set(shell.state_dict())
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise ExportError(
            f"export to {output_dir}: trained weights do not match {type(shell).__name__} "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    shell.load_state_dict(weights, strict=True, assign=True)
    if getattr(config, "tie_word_embeddings", False) and hasattr(shell, "tie_weights"):
        shell.tie_weights()
    output_dir.mkdir(parents=True, exist_ok=True)
    shell.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    if lm_head is not None and not getattr(config, "tie_word_embeddings", False):
        from safetensors.torch import save_file

        save_file({"weight": lm_head.to(dtype).contiguous()}, str(output_dir / LM_HEAD_FILE))
    logger.info("exported %s (%s) to %s", type(shell).__name__, str(dtype).removeprefix("torch."), output_dir)
    return output_dir


def reward_state_dict(model) -> dict[str, torch.Tensor]:
    """Plain (unsharded, LoRA-merged) weights of a local :class:`RewardModel`, keys in the seq-cls layout."""
    from themis_rm.train.model import merged_decoder

    prefix = model.base_model_prefix
    state = {f"{prefix}.{k}": v for k, v in merged_decoder(model).state_dict().items()}
    state["score.weight"] = model.score.weight
    if model.lm_head is not None:
        state["lm_head.weight"] = model.lm_head.weight
    return {k: v.detach() for k, v in state.items()}
