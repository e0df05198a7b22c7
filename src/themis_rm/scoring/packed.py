"""Padding-free scoring: sequences packed into one row, each read at its own last token.

With flash-attention 2 on a GPU, transformers runs a packed row as varlen attention (``position_ids`` restarting
at 0 for each sequence give the ``cu_seqlens``), so no compute is spent on padding. The sequence-classification
head cannot be used as is — it pools one token per *row* — so the engine runs the decoder (``model.base_model``)
and applies the head (``model.score``) to the hidden state at each sequence's end. ``use_cache=False`` is passed
explicitly: with a cache, transformers skips packed-sequence detection and the scores are silently wrong.

On CPU, SDPA builds an explicit block-diagonal mask for a packed row (correct, but slower than sorted padding), so
``Scorer`` only picks this path on CUDA with flash-attn installed; ``--engine packed`` forces it for testing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from themis_rm.scoring.engine import EngineStats


def supports_packing(model: torch.nn.Module) -> bool:
    """A decoder seq-cls model whose head is a ``score`` module applied per position (Qwen3, Llama, Mistral)."""
    return (
        isinstance(getattr(model, "score", None), torch.nn.Module) and getattr(model, "base_model", model) is not model
    )


def plan_packs(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit-decreasing packing of sequence indices into rows of at most ``capacity`` tokens."""
    packs: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for p, free in enumerate(room):
            if lengths[index] <= free:
                packs[p].append(index)
                room[p] -= lengths[index]
                break
        else:
            packs.append([index])
            room.append(capacity - lengths[index])
    return packs


class PackedScoringEngine:
    """Scores token sequences packed into single rows (see module docstring)."""

    def __init__(self, model: torch.nn.Module, batch_tokens: int = 16384, stats: EngineStats | None = None) -> None:
        self.model = model
        self.batch_tokens = batch_tokens
        self.device = next(model.parameters()).device
        self.stats = stats or EngineStats()

    @torch.inference_mode()
    def score(self, sequences: Sequence[Sequence[int]], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Rewards (float64, input order)."""
        started = time.perf_counter()
        rewards = np.empty(len(sequences), dtype=np.float64)
        for pack in plan_packs([len(s) for s in sequences], self.batch_tokens):
            lengths = [len(sequences[i]) for i in pack]
            input_ids = torch.tensor([t for i in pack for t in sequences[i]], device=self.device)[None, :]
            positions = torch.cat([torch.arange(n, device=self.device) for n in lengths])[None, :]
            ends = torch.as_tensor(np.cumsum(lengths) - 1, device=self.device)
            hidden = self.model.base_model(input_ids=input_ids, position_ids=positions, use_cache=False)[0]
            rewards[pack] = self.model.score(hidden[0, ends]).float()[:, 0].cpu().numpy()
            self.stats.batches += 1
            self.stats.tokens += input_ids.shape[1]
            self.stats.padded_tokens += input_ids.shape[1]
            if progress is not None:
                progress(len(pack))
        self.stats.sequences += len(sequences)
        self.stats.seconds += time.perf_counter() - started
        return rewards
