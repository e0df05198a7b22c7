"""The model being trained: a decoder backbone, its LM head, and a linear reward head read at each sequence's end.

Attribute names follow the HF sequence-classification layout (``<base_model_prefix>.*``, ``score``), so the
exported state dict is the trained one minus ``lm_head.*`` and loads with a strict key check (``export.py``).

The whole objective runs inside :meth:`RewardModel.forward`: FSDP's hooks, DDP's reducer and accelerate's
autocast wrap ``forward``, so a loss computed outside it (calling sub-modules directly) would skip them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from themis_rm.errors import ThemisInputError
from themis_rm.train.config import LoraConfig, LossConfig
from themis_rm.train.loss import LMLossFn, StepNorm, pair_loss, select_lm_loss

logger = logging.getLogger(__name__)

LM_HEAD_FILE = "lm_head.safetensors"  # beside an export: lets a PT export continue into PM with the LM loss


class RewardOutput(NamedTuple):
    """``loss`` (scalar), ``chosen``/``rejected`` rewards ``(B,)`` fp32, ``stats`` (see ``loss.STAT_NAMES``)."""

    loss: torch.Tensor
    chosen: torch.Tensor
    rejected: torch.Tensor
    stats: torch.Tensor


class RewardModel(nn.Module):
    """Backbone + LM head + zero-initialisable reward head; ``forward`` returns the loss and its statistics.

    Args:
        decoder: the bare transformer (``Qwen3Model``, ``LlamaModel``, ...) returning hidden states.
        lm_head: the causal LM head, or None when the LM loss is off and none is available.
        score: ``Linear(hidden, 1, bias=False)``.
    """

    def __init__(self, decoder: nn.Module, lm_head: nn.Linear | None, score: nn.Linear, loss: LossConfig) -> None:
        super().__init__()
        self.base_model_prefix = getattr(decoder, "base_model_prefix", "model") or "model"
        self.add_module(self.base_model_prefix, decoder)
        self.score = score
        self.lm_head = lm_head
        self.config = decoder.config
        self.loss_config = loss
        self._no_split_modules = decoder_layer_classes(decoder)
        self._lm_loss: LMLossFn | None = None
        self.lm_loss_kind = "none"

    @property
    def decoder(self) -> nn.Module:
        return getattr(self, self.base_model_prefix)

    def get_input_embeddings(self) -> nn.Module:
        return self.decoder.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module | None:
        return self.lm_head

    def tie_weights(self) -> None:
        """Re-tie the LM head to the input embeddings when the backbone ties them (FSDP re-ties after meta moves)."""
        if self.lm_head is not None and getattr(self.config, "tie_word_embeddings", False):
            self.lm_head.weight = self.get_input_embeddings().weight

    def configure_lm_loss(self, device: torch.device) -> str:
        """Pick the LM loss kernel for ``device`` (liger on CUDA when present, else chunked); returns its name."""
        self._lm_loss, self.lm_loss_kind = select_lm_loss(
            self.loss_config.liger, device, self.loss_config.lm_chunk_tokens
        )
        return self.lm_loss_kind

    def forward(
        self,
        input_ids: torch.Tensor,
        reward_index: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        lm_index: torch.Tensor | None = None,
        lm_target: torch.Tensor | None = None,
        pair_weight: torch.Tensor | None = None,
        step_norm: StepNorm | None = None,
    ) -> RewardOutput:
        """Rewards of ``2B`` sequences (chosen first) and the micro-batch's loss within its optimizer step.

        Args:
            input_ids: ``(R, T)`` right-padded rows, or one packed row (``R = 1``) with ``position_ids``.
            reward_index: ``(2B,)`` flat indices into ``R*T`` of each sequence's last token.
            lm_index: ``(N,)`` flat indices of positions whose next token is a chosen response token.
            lm_target: ``(N,)`` those next tokens.
            pair_weight: ``(B,)`` 1 for real pairs, 0 for placeholders.
            step_norm: the whole step's pair and LM-token counts (see :func:`~themis_rm.train.loss.pair_loss`);
                None normalises by this micro-batch alone.
        """
        hidden = self.decoder(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state
        flat = hidden.flatten(0, 1)
        rewards = self._reward(flat.index_select(0, reward_index))
        chosen, rejected = rewards.chunk(2)
        if pair_weight is None:
            pair_weight = torch.ones_like(chosen)
        lm_sum, lm_tokens = self._lm(flat, lm_index, lm_target)
        loss, stats = pair_loss(
            chosen,
            rejected,
            pair_weight.float(),
            lm_sum,
            lm_tokens,
            lm_weight=self.loss_config.lm_weight if self.lm_head is not None else 0.0,
            magnitude_weight=self.loss_config.magnitude_weight,
            magnitude=self.loss_config.magnitude,
            step=step_norm,
        )
        return RewardOutput(loss, chosen, rejected, stats)

    def _reward(self, last_hidden: torch.Tensor) -> torch.Tensor:
        """The head in fp32 outside autocast: bf16 rewards would tie pairs that differ by less than 1/128."""
        with torch.autocast(device_type=last_hidden.device.type, enabled=False):
            weight = self.score.weight
            return nn.functional.linear(last_hidden.float(), weight.float()).squeeze(-1)

    def _lm(
        self, flat: torch.Tensor, lm_index: torch.Tensor | None, lm_target: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        zero = flat.new_zeros((), dtype=torch.float32)
        if self.lm_head is None or not self.loss_config.lm_weight:
            return zero, zero
        if lm_index is None or lm_index.numel() == 0:
            # Keep the head in the graph: DDP fails when a parameter gets no gradient on one rank only.
            return zero + 0.0 * self.lm_head.weight.sum(), zero
        if self._lm_loss is None:
            self.configure_lm_loss(flat.device)
        selected = flat.index_select(0, lm_index)
        return self._lm_loss(selected, self.lm_head, lm_target), flat.new_tensor(
            float(lm_index.numel()), dtype=torch.float32
        )


def decoder_layer_classes(model: nn.Module) -> list[str]:
    """Class names of the repeated decoder layers, for FSDP's transformer-based wrap (never hard-coded).

    First ``model._no_split_modules`` (transformers declares it per architecture), kept only where such a
    module really occurs; else the class of the children of the longest ``nn.ModuleList`` (``model.layers``).
    """
    present = {type(m).__name__ for m in model.modules()}
    declared = [name for name in (getattr(model, "_no_split_modules", None) or []) if name in present]
    if declared:
        return declared
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not lists:
        return []
    longest = max(lists, key=len)
    return sorted({type(child).__name__ for child in longest})


def load_backbone(name: str, *, dtype: torch.dtype, attn_implementation: str, loss: LossConfig) -> RewardModel:
    """Load ``name`` as a :class:`RewardModel`.

    A causal LM gets a zero-initialised head (every reward is 0 at step 0, the BT loss ln 2). A one-label
    seq-cls model keeps its trained head; its LM head comes from tied embeddings or the ``lm_head.safetensors``
    an earlier ``themis train`` export wrote beside it.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(name)
    kwargs = {"dtype": dtype, "attn_implementation": attn_implementation}
    if any(arch.endswith("ForSequenceClassification") for arch in config.architectures or ()):
        seqcls = AutoModelForSequenceClassification.from_pretrained(name, **kwargs)
        if seqcls.config.num_labels != 1 or not isinstance(getattr(seqcls, "score", None), nn.Linear):
            raise ThemisInputError(f"--model {name}: a seq-cls start needs num_labels=1 and a linear 'score' head")
        if seqcls.score.bias is not None:
            raise ThemisInputError(f"--model {name}: the reward head has a bias; only bias-free heads are supported")
        decoder, score = seqcls.base_model, seqcls.score
        lm_head = _restore_lm_head(name, decoder, loss)
    else:
        causal = AutoModelForCausalLM.from_pretrained(name, **kwargs)
        decoder, lm_head = causal.base_model, causal.get_output_embeddings()
        score = nn.Linear(decoder.config.hidden_size, 1, bias=False, dtype=dtype)
        nn.init.zeros_(score.weight)
    decoder.config.use_cache = False  # a KV cache silently breaks packed position_ids (OFFLINE-NOTES §8)
    if lm_head is not None and not loss.lm_weight and not getattr(decoder.config, "tie_word_embeddings", False):
        lm_head.requires_grad_(False)  # unused without the LM loss: DDP rejects parameters that get no gradient
    return RewardModel(decoder, lm_head, score, loss)


def _restore_lm_head(name: str, decoder: nn.Module, loss: LossConfig) -> nn.Linear | None:
    embeddings = decoder.get_input_embeddings().weight
    vocab, hidden = embeddings.shape
    head = nn.Linear(hidden, vocab, bias=False, dtype=embeddings.dtype)
    if getattr(decoder.config, "tie_word_embeddings", False):
        head.weight = embeddings
        return head
    sidecar = Path(name) / LM_HEAD_FILE
    if sidecar.is_file():
        from safetensors.torch import load_file

        head.weight.data.copy_(load_file(sidecar)["weight"])
        return head
    if loss.lm_weight:
        raise ThemisInputError(
            f"--model {name} is a seq-cls model without an LM head ({LM_HEAD_FILE} is not beside it and its "
            "embeddings are untied), so the LM loss cannot be computed; pass --lm-weight 0"
        )
    return None


def apply_lora(model: RewardModel, lora: LoraConfig) -> RewardModel:
    """Put LoRA adapters on the backbone's linear layers (peft); the reward head stays fully trainable.

    Only the backbone is wrapped, so the reward head is an ordinary trainable module — the effect of peft's
    ``modules_to_save`` without its extra copy of the head — and the LM head stays frozen.
    """
    try:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model
    except ImportError as exc:
        from themis_rm.errors import MissingExtraError

        raise MissingExtraError("peft", "train") from exc
    targets = lora.lora_target_modules
    peft_config = PeftLoraConfig(
        r=lora.lora_r,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
    )
    wrapped = get_peft_model(model.decoder, peft_config)
    model.add_module(model.base_model_prefix, wrapped)
    if model.lm_head is not None:
        model.lm_head.requires_grad_(False)
    model.score.requires_grad_(True)
    return model


def merged_decoder(model: RewardModel) -> nn.Module:
    """The backbone with LoRA adapters merged in (unchanged when there are none)."""
    decoder = model.decoder
    if hasattr(decoder, "merge_and_unload"):
        return decoder.merge_and_unload()
    return decoder
