"""Which engine path scores a call: ``prefix`` (shared-prefix KV reuse), ``packed`` (varlen) or ``padded``.

Every path equals the plain forward (parity-tested), so the choice is only about speed. ``auto`` builds every path
the model can take and picks one per call; a forced path fails when the scorer is built if the model cannot take
it, not at the first call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from transformers import PreTrainedModel

from themis_rm.errors import ThemisInputError
from themis_rm.render import RenderedSequence
from themis_rm.scoring.config import ENGINES
from themis_rm.scoring.engine import ScoringEngine
from themis_rm.scoring.models import LoadedModel
from themis_rm.scoring.packed import PackedScoringEngine, supports_packing
from themis_rm.scoring.prefix import PrefixScoringEngine

# Use shared-prefix reuse when it computes at most this share of the tokens (it costs an extra forward per level).
PREFIX_REUSE_THRESHOLD = 0.75


class Engines(NamedTuple):
    """The paths a scorer can take; all three count into ``padded.stats``, so ``run.json`` sees one total."""

    padded: ScoringEngine
    prefix: PrefixScoringEngine | None
    """None when the model cannot continue from a KV cache or ``engine`` is ``packed``/``padded``."""
    packed: PackedScoringEngine | None
    """None unless packing pays (varlen attention) or ``engine`` is ``packed``, and the model has a score head."""


def build_engines(loaded: LoadedModel, engine: str, batch_tokens: int | None) -> Engines:
    """The engines for ``engine`` mode, with a padded-token budget of ``batch_tokens`` (16k CPU, 64k GPU default).

    Raises:
        ThemisInputError: ``engine`` is not one of :data:`ENGINES`, or it forces a path the model cannot take.
    """
    if engine not in ENGINES:
        raise ThemisInputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    default_budget = 65536 if loaded.device.type == "cuda" else 16384
    padded = ScoringEngine(loaded.model, loaded.tokenizer.pad_token_id, batch_tokens or default_budget)
    prefix = None
    if engine in ("auto", "prefix") and _supports_prefix_reuse(loaded.model):
        prefix = PrefixScoringEngine(
            loaded.model, loaded.tokenizer.pad_token_id, padded.batch_tokens, stats=padded.stats
        )
    elif engine == "prefix":
        raise ThemisInputError(f"--engine prefix: {type(loaded.model).__name__} cannot continue from a KV cache")
    packed = None
    if supports_packing(loaded.model) and (engine == "packed" or _has_varlen_attention(loaded)):
        packed = PackedScoringEngine(loaded.model, padded.batch_tokens, stats=padded.stats)
    elif engine == "packed":
        raise ThemisInputError(f"--engine packed: {type(loaded.model).__name__} has no per-position score head")
    return Engines(padded, prefix, packed)


def choose_path(engine: str, engines: Engines, rendered: Sequence[RenderedSequence]) -> str:
    """The fastest exact path for these sequences under ``engine`` mode.

    ``prefix`` when reuse computes at most ``PREFIX_REUSE_THRESHOLD`` of the tokens; else ``packed`` when varlen
    attention makes packing free (CUDA + flash-attn); else length-sorted ``padded`` batches.
    """
    if engine in ("prefix", "packed", "padded"):
        return engine
    if engines.prefix is not None and engines.prefix.reuse_ratio(rendered) <= PREFIX_REUSE_THRESHOLD:
        return "prefix"
    return "packed" if engines.packed is not None else "padded"


def _has_varlen_attention(loaded: LoadedModel) -> bool:
    """Packing pays only where attention runs varlen (flash-attn on CUDA), not with SDPA's dense masks."""
    return loaded.device.type == "cuda" and loaded.attn_implementation.startswith("flash_attention")


def _supports_prefix_reuse(model: torch.nn.Module) -> bool:
    """Decoder seq-cls models of transformers continue from a KV cache; custom adapter wrappers do not."""
    base = getattr(model, "base_model", None)
    return isinstance(model, PreTrainedModel) and base is not None and base is not model
