"""Load a reward model and its tokenizer: any ``AutoModelForSequenceClassification`` with one label.

Fixes the loading traps of the reference scripts: a missing pad token falls back to EOS *and* the model config
learns it (HF seq-cls pooling needs ``config.pad_token_id``); ``use_cache`` is off (a cache makes packed inputs
silently wrong); dtype and attention kernel are chosen from what the device supports.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

import torch

from themis_rm.errors import ThemisInputError

logger = logging.getLogger(__name__)

_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


@dataclass(frozen=True)
class LoadedModel:
    """A reward model ready to score: ``model(input_ids, attention_mask).logits`` is ``(B, 1)``."""

    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    dtype: torch.dtype
    attn_implementation: str
    model_id: str
    revision: str | None
    adapter: str = "seqcls"
    adapter_spec: dict | None = None
    reserved_tokens: int = 0
    """Tokens the model appends to every sequence itself (an lm-logprob question); the renderer leaves room."""

    def render_budget(self, max_length: int) -> int:
        """The share of ``max_length`` a rendered conversation may take, so appended tokens stay within it.

        Raises:
            ThemisInputError: ``max_length`` leaves no room beside the appended tokens.
        """
        budget = max_length - self.reserved_tokens
        if budget < 1:
            raise ThemisInputError(
                f"--max-length {max_length} leaves no room for the conversation: the {self.adapter} adapter appends "
                f"{self.reserved_tokens} tokens (its question/suffix) to every sequence; raise --max-length"
            )
        return budget


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else is passed to :class:`torch.device`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bf16 on a GPU that supports it, fp32 otherwise (CPU bf16 matmuls are slow on AVX2)."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ThemisInputError(f"--dtype must be one of auto, {', '.join(_DTYPES)}; got {dtype!r}")
    return _DTYPES[dtype]


def resolve_attention(attn_implementation: str, device: torch.device) -> str:
    """``auto`` -> flash-attention 2 on CUDA when the package is installed, else PyTorch SDPA."""
    if attn_implementation != "auto":
        return attn_implementation
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def load_tokenizer(model_id: str, revision: str | None = None):
    """The model's fast tokenizer; a missing pad token falls back to EOS (the config must learn it too)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_id, revision=revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_reward_model(
    model_id: str,
    *,
    dtype: str = "auto",
    device: str = "auto",
    attn_implementation: str = "auto",
    revision: str | None = None,
) -> LoadedModel:
    """Load a one-label sequence-classification reward model and its fast tokenizer."""
    from transformers import AutoModelForSequenceClassification

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    attention = resolve_attention(attn_implementation, torch_device)
    tokenizer = load_tokenizer(model_id, revision)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_id, revision=revision, dtype=torch_dtype, attn_implementation=attention
    )
    if model.config.num_labels != 1:
        raise ThemisInputError(f"{model_id}: a reward model needs num_labels=1, this one has {model.config.num_labels}")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    model.to(torch_device).eval()
    logger.info("loaded %s on %s (%s, %s)", model_id, torch_device, torch_dtype, attention)
    return LoadedModel(model, tokenizer, torch_device, torch_dtype, attention, model_id, revision)
