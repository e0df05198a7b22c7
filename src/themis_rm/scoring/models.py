"""Load a reward model and its tokenizer: any ``AutoModelForSequenceClassification`` with one label.

Fixes the loading traps of the reference scripts: a missing pad token falls back to EOS *and* the model config
learns it (HF seq-cls pooling needs ``config.pad_token_id``); ``use_cache`` is off (a cache makes packed inputs
silently wrong); dtype and attention kernel are chosen from what the device supports.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

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


_SNAPSHOT_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]
_CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def resolve_model_dir(model_id: str, revision: str | None = None) -> Path:
    """A local dir as is; a hub id through huggingface_hub's snapshot cache (offline: the cached copy only).

    Raises:
        ThemisInputError: one line naming the id and the fix, instead of huggingface_hub's traceback.
    """
    path = Path(model_id)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    if path.is_absolute() or model_id.startswith((".", "~")) or model_id.count("/") > 1:
        raise ThemisInputError(f"{model_id!r}: no such model directory")
    try:
        return Path(snapshot_download(model_id, revision=revision, allow_patterns=_SNAPSHOT_FILES))
    except (OSError, HFValidationError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        where = "HF_HUB_OFFLINE is set: nothing is downloaded" if offline else f"the hub said {type(exc).__name__}"
        raise ThemisInputError(
            f"{model_id!r} is neither a local directory nor a hub model in the local cache ({where}); pass a "
            f"checkpoint directory, or fetch it first where the hub is reachable: hf download {model_id}"
        ) from None


def refuse_causal_lm(model_id: str, model_dir: Path) -> None:
    """A causal-LM checkpoint has no reward head: loading it for sequence classification would score with a
    random one (transformers only warns). Say what to do instead."""
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        return
    architectures = json.loads(config_file.read_text()).get("architectures") or []
    if architectures and all(name.endswith(_CAUSAL_LM_SUFFIXES) for name in architectures):
        raise ThemisInputError(
            f"{model_id} is a language model ({', '.join(architectures)}), not a reward model: it has no reward "
            f"head, so --adapter seqcls would score with a random one. Train a reward model from it "
            f"(themis train --model {model_id}), or read its next-token probabilities (--adapter lm-logprob)"
        )


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
    model_dir = resolve_model_dir(model_id, revision)
    refuse_causal_lm(model_id, model_dir)
    tokenizer = load_tokenizer(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch_dtype, attn_implementation=attention
    )
    if model.config.num_labels != 1:
        raise ThemisInputError(f"{model_id}: a reward model needs num_labels=1, this one has {model.config.num_labels}")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    model.to(torch_device).eval()
    logger.info("loaded %s on %s (%s, %s)", model_id, torch_device, torch_dtype, attention)
    return LoadedModel(model, tokenizer, torch_device, torch_dtype, attention, model_id, revision)
