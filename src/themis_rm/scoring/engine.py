"""Batches token sequences through a reward model: length-sorted, token-budget batches, input order restored.

The reference protocol slices the dataset into fixed batches of 8 in dataset order and pads each to its longest
member; sorting by length first and filling each batch up to a padded-token budget wastes almost no compute on
padding and keeps memory bounded whatever the length mix. No per-batch ``empty_cache``: the allocator reuses blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class EngineStats:
    """Work counters of the engine, accumulated over calls (land in run settings and benchmark output)."""

    sequences: int = 0
    batches: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    seconds: float = 0.0
    cached_tokens: int = 0  # prefix tokens taken from kept cache states instead of computed again

    @property
    def padding_efficiency(self) -> float:
        return self.tokens / self.padded_tokens if self.padded_tokens else 1.0


FORWARD_OVERHEAD_TOKENS = 256  # what one more forward costs, in padded tokens: splits that save less are not made


def plan_batches(lengths: Sequence[int], batch_tokens: int, max_batch_size: int | None = None) -> list[list[int]]:
    """Group sequence indices into batches whose padded size (longest x count) stays within ``batch_tokens``.

    Longest sequences come first, so an out-of-memory budget fails at the start of a run, not at its end.
    A sequence longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[current[0]] if current else lengths[index]
        too_many = max_batch_size is not None and len(current) >= max_batch_size
        if current and (longest * (len(current) + 1) > batch_tokens or too_many):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def plan_padded_groups(
    lengths: Sequence[int], batch_tokens: int, base_tokens: int = 0, overhead_tokens: int = FORWARD_OVERHEAD_TOKENS
) -> list[list[int]]:
    """Group indices into batches that waste the least on padding, each within ``batch_tokens``.

    A batch costs ``longest × rows`` padded tokens plus ``overhead_tokens`` for the forward itself, and must keep
    ``(base_tokens + longest) × rows`` within ``batch_tokens`` (``base_tokens``: the cached prefix every row
    attends to). Over the lengths sorted longest first, the cheapest split into consecutive batches is found
    exactly by dynamic programming (O(n × rows per batch)). The greedy fill of :func:`plan_batches` is right when
    neighbours in the sort have similar lengths (a whole benchmark); a prefix tree's levels hold a few blocks of
    very different lengths (one aspect's prompts), where filling to the budget pads a 50-token prompt to 1,500.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    sorted_lengths = [lengths[i] for i in order]
    best = [0] + [float("inf")] * len(order)  # best[i]: cheapest plan of the first i (longest) items
    start = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        for first in range(end - 1, -1, -1):  # batch = sorted items first..end-1; its longest is the first
            rows = end - first
            if rows > 1 and (base_tokens + sorted_lengths[first]) * rows > batch_tokens:
                break  # earlier starts are longer and hold more rows: they overflow too
            cost = best[first] + sorted_lengths[first] * rows + overhead_tokens
            if cost < best[end]:
                best[end], start[end] = cost, first
    batches, end = [], len(order)
    while end:
        batches.append(order[start[end] : end])
        end = start[end]
    return batches[::-1]


class ScoringEngine:
    """Scores token-id sequences with a one-label sequence-classification model.

    Args:
        model: a model whose forward returns ``logits`` of shape ``(B, 1)``.
        pad_token_id: id used for right padding (the model's seq-cls pooling skips it).
        batch_tokens: padded tokens per forward pass.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        pad_token_id: int,
        batch_tokens: int = 16384,
        max_batch_size: int | None = None,
    ) -> None:
        self.model = model
        self.pad_token_id = pad_token_id
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.device = next(model.parameters()).device
        self.stats = EngineStats()

    @torch.inference_mode()
    def score(self, sequences: Sequence[Sequence[int]], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Rewards (float64, input order) for each sequence; ``progress(n)`` is called after each batch."""
        rewards = np.empty(len(sequences), dtype=np.float64)
        started = time.perf_counter()
        for batch in plan_batches([len(s) for s in sequences], self.batch_tokens, self.max_batch_size):
            input_ids, attention_mask = self._pad([sequences[i] for i in batch])
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            rewards[batch] = logits[:, 0].float().cpu().numpy()
            self.stats.batches += 1
            self.stats.tokens += int(attention_mask.sum())
            self.stats.padded_tokens += attention_mask.numel()
            if progress is not None:
                progress(len(batch))
        self.stats.sequences += len(sequences)
        self.stats.seconds += time.perf_counter() - started
        return rewards

    def _pad(self, batch: list[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        return input_ids.to(self.device, non_blocking=True), attention_mask.to(self.device, non_blocking=True)
