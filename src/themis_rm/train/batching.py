"""Batches without waste: length-grouped step plans, and the collator that renders pairs into model inputs.

A *step* is one optimizer update: ``batch_size`` pairs, split into ``world_size x grad_accum`` micro-batches. The
pairs of a step are sorted by length and cut into micro-batches, which are dealt round-robin to the processes, so
each micro-batch holds similar lengths (little padding) and every process gets a similar share of long ones.
Plans are pure functions of ``(seed, epoch)``: resuming at ``(epoch, step)`` replays the same batches.

The collator renders with THE renderer (:class:`~themis_rm.render.ChatRenderer`), so training sees exactly the
token ids scoring sees; the LM-loss targets are the chosen sequence's tokens at positions ``>= prefix_len``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from themis_rm.errors import PromptTooLongError
from themis_rm.pairs import ScoreRequest
from themis_rm.render import ChatRenderer, RenderedSequence
from themis_rm.train.data import SystemPrompts, TrainingPair

logger = logging.getLogger(__name__)


def plan_epoch(
    lengths: Sequence[int], *, batch_size: int, micro_batch_size: int, world_size: int, seed: int, epoch: int
) -> list[list[list[int]]]:
    """``steps[s][rank]`` = the micro-batches (lists of pair indices) process ``rank`` runs in step ``s``.

    The last ``len(lengths) % batch_size`` pairs of the shuffled order wait for the next epoch's shuffle
    (drop-last); the caller counts them.
    """
    per_rank = batch_size // world_size
    order = np.random.default_rng([seed, epoch]).permutation(len(lengths))
    lengths = np.asarray(lengths)
    steps = []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        chunk = order[start : start + batch_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        micro = [chunk[i : i + micro_batch_size].tolist() for i in range(0, batch_size, micro_batch_size)]
        steps.append([micro[rank::world_size] for rank in range(world_size)])
        assert all(sum(map(len, mbs)) == per_rank for mbs in steps[-1])
    return steps


class StepSampler:
    """Batch sampler over one epoch's plan for one process, from ``start_step`` on; yields ``(epoch, index)``."""

    def __init__(self, plan: list[list[list[int]]], rank: int, epoch: int, start_step: int = 0) -> None:
        self.plan, self.rank, self.epoch, self.start_step = plan, rank, epoch, start_step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in self.plan[self.start_step :]:
            for micro in step[self.rank]:
                yield [(self.epoch, i) for i in micro]

    def __len__(self) -> int:
        return sum(len(step[self.rank]) for step in self.plan[self.start_step :])


class PairDataset(Dataset):
    """``dataset[(epoch, index)] -> (epoch, index, pair)``: the epoch travels with the index to the workers."""

    def __init__(self, pairs: Sequence[TrainingPair]) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, int, TrainingPair]:
        epoch, index = key
        return epoch, index, self.pairs[index]


class _Rendered(NamedTuple):
    index: int
    chosen: RenderedSequence
    rejected: RenderedSequence
    weight: float  # 0 marks a dropped pair (kept only as a placeholder)
    aspect: str | None
    identical: bool = False  # chosen and rejected rendered to the same tokens: dropped, never a tie to learn


@dataclass
class PairBatch:
    """Model inputs for one micro-batch of ``B`` pairs (rows: chosen 0..B-1, then rejected 0..B-1).

    ``counts`` carries this batch's truncation/drop counters back from DataLoader workers to the loop.
    """

    input_ids: torch.Tensor
    reward_index: torch.Tensor
    lm_index: torch.Tensor
    lm_target: torch.Tensor
    pair_weight: torch.Tensor
    attention_mask: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None
    pair_indices: list[int] = field(default_factory=list)
    aspects: list[str | None] = field(default_factory=list)
    identical_indices: list[int] = field(default_factory=list)
    tokens: int = 0
    counts: Counter = field(default_factory=Counter)

    def model_inputs(self, device: torch.device) -> dict[str, torch.Tensor]:
        names = ("input_ids", "reward_index", "lm_index", "lm_target", "pair_weight", "attention_mask", "position_ids")
        inputs = {name: getattr(self, name) for name in names}
        return {k: v.to(device, non_blocking=True) for k, v in inputs.items() if v is not None}


class PairCollator:
    """Renders pairs under their system prompts and builds padded (or packed) model inputs.

    Over-length pairs follow ``overflow``: ``truncate`` cuts responses (closing tokens kept) and counts
    ``truncated_pairs``; ``drop`` removes the pair and counts ``dropped_too_long``. A pair whose two sides render to
    the same tokens is dropped and counted under either policy (see :meth:`_apply_overflow`). When the prompt itself
    leaves no room for the response, the renderer's ``prompt_overflow`` decides first: ``truncate`` keeps half the
    budget of response and cuts the end of the last prompt turn (counted in ``prompt_truncated_pairs``, then handled
    as any over-length pair above); ``error`` drops the pair (``dropped_prompt_too_long``). A system prompt and
    template that alone exceed the budget drop the pair under either policy (``dropped_prompt_too_long``); nothing
    is raised. A micro-batch whose pairs all dropped keeps one placeholder of weight 0, so every process still runs
    the same forwards (FSDP collectives); placeholders count in no loss denominator.
    """

    def __init__(
        self,
        renderer: ChatRenderer,
        prompts: SystemPrompts,
        pad_id: int,
        *,
        overflow: str = "truncate",
        packed: bool = False,
        evaluation: bool = False,
    ) -> None:
        self.renderer, self.prompts, self.pad_id = renderer, prompts, pad_id
        self.overflow, self.packed, self.evaluation = overflow, packed, evaluation

    def __call__(self, items: Sequence[tuple[int, int, TrainingPair]]) -> PairBatch:
        counts: Counter = Counter()
        rendered = self._render(items, counts)
        kept = [r for r in rendered if r.weight > 0]
        if not kept:
            kept = rendered[:1]
            counts["placeholder_batches"] += 1
        chosen = [r.chosen for r in kept]
        rejected = [r.rejected for r in kept]
        lm_mask = [r.weight > 0 and not self.evaluation for r in kept]
        batch = self._pack(chosen, rejected, lm_mask) if self.packed else self._pad(chosen, rejected, lm_mask)
        batch.pair_weight = torch.tensor([r.weight for r in kept], dtype=torch.float32)
        batch.pair_indices = [r.index for r in kept]
        batch.aspects = [r.aspect for r in kept]
        batch.identical_indices = [r.index for r in rendered if r.identical]
        counts["trained_pairs"] += sum(1 for r in kept if r.weight > 0)
        counts["real_tokens"] += batch.tokens
        counts["computed_tokens"] += batch.input_ids.numel()  # padded rows x width (= real tokens when packed)
        batch.counts = counts
        return batch

    # ------------------------------------------------------------------------------------------- rendering
    def _render(self, items: Sequence[tuple[int, int, TrainingPair]], counts: Counter) -> list[_Rendered]:
        requests = []
        for epoch, index, pair in items:
            system = self.prompts.evaluation(pair) if self.evaluation else self.prompts.training(pair, index, epoch)
            requests.append(
                (ScoreRequest(pair.prompt, pair.chosen, system), ScoreRequest(pair.prompt, pair.rejected, system))
            )
        out = []
        for (_, index, pair), request, sequences in zip(items, requests, self._render_pairs(requests), strict=True):
            if sequences is None:
                counts["dropped_prompt_too_long"] += 1
                stub = [ScoreRequest("", r.response[:64]) for r in request]  # a placeholder, never learned from
                out.append(_Rendered(index, *self.renderer.render_many(stub), 0.0, pair.aspect))
            else:
                out.append(self._apply_overflow(index, pair, *sequences, counts))
        return out

    def _render_pairs(self, requests: list[tuple[ScoreRequest, ScoreRequest]]) -> list[tuple | None]:
        """(chosen, rejected) per pair in one tokenizer call; pair by pair only when some prompt does not fit."""
        try:
            flat = self.renderer.render_many([r for pair in requests for r in pair])
            return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        except PromptTooLongError:
            pass
        out = []
        for pair in requests:
            try:
                out.append(tuple(self.renderer.render_many(list(pair))))
            except PromptTooLongError:
                out.append(None)
        return out

    def _apply_overflow(
        self, index: int, pair: TrainingPair, chosen: RenderedSequence, rejected: RenderedSequence, counts: Counter
    ) -> _Rendered:
        """Count truncations; under ``overflow="drop"`` a truncated training pair gets weight 0.

        A pair whose sides render to the same tokens gets weight 0 under any policy (train and eval): a cut that
        removed the only difference (``dropped_identical_after_truncation``) or equal texts
        (``dropped_identical_pairs``) would teach a tie the label says is not one.
        """
        cut = chosen.truncated or rejected.truncated
        if chosen.input_ids == rejected.input_ids:
            counts["dropped_identical_after_truncation" if cut else "dropped_identical_pairs"] += 1
            return _Rendered(index, chosen, rejected, 0.0, pair.aspect, identical=True)
        if cut:
            counts["truncated_tokens"] += chosen.truncated_tokens + rejected.truncated_tokens
            counts["prompt_truncated_pairs"] += int(
                chosen.prompt_truncated_tokens + rejected.prompt_truncated_tokens > 0
            )
            if self.overflow == "drop" and not self.evaluation:
                counts["dropped_too_long"] += 1
                return _Rendered(index, chosen, rejected, 0.0, pair.aspect)
            counts["truncated_pairs"] += 1
        return _Rendered(index, chosen, rejected, 1.0, pair.aspect)

    # --------------------------------------------------------------------------------------------- layouts
    def _pad(self, chosen: list[RenderedSequence], rejected: list[RenderedSequence], lm_mask: list[bool]) -> PairBatch:
        rows = [s.input_ids for s in (*chosen, *rejected)]
        width = max(map(len, rows))
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention_mask[i, : len(ids)] = 1
        starts = [i * width for i in range(len(rows))]
        batch = self._indices(chosen, rows, starts, lm_mask)
        batch.input_ids, batch.attention_mask = input_ids, attention_mask
        return batch

    def _pack(self, chosen: list[RenderedSequence], rejected: list[RenderedSequence], lm_mask: list[bool]) -> PairBatch:
        rows = [s.input_ids for s in (*chosen, *rejected)]
        starts = np.concatenate([[0], np.cumsum([len(r) for r in rows])[:-1]]).tolist()
        batch = self._indices(chosen, rows, starts, lm_mask)
        batch.input_ids = torch.tensor([t for ids in rows for t in ids], dtype=torch.long).unsqueeze(0)
        batch.position_ids = torch.cat([torch.arange(len(ids)) for ids in rows]).unsqueeze(0)
        return batch

    @staticmethod
    def _indices(
        chosen: list[RenderedSequence], rows: list[list[int]], starts: list[int], lm_mask: list[bool]
    ) -> PairBatch:
        """Flat indices of each sequence's last token and of the LM-loss positions (chosen response only).

        Position ``p - 1`` predicts token ``p``; the targets are the chosen tokens at ``p >= prefix_len``
        (response and closing tokens): system prompt, prompt and assistant header are never LM targets.
        """
        reward_index = torch.tensor([s + len(ids) - 1 for s, ids in zip(starts, rows, strict=True)])
        lm_index, lm_target = [], []
        for start, seq, on in zip(starts[: len(chosen)], chosen, lm_mask, strict=True):
            if on:
                positions = range(max(seq.prefix_len, 1), len(seq.input_ids))
                lm_index.extend(start + p - 1 for p in positions)
                lm_target.extend(seq.input_ids[p] for p in positions)
        return PairBatch(
            input_ids=torch.empty(0),
            reward_index=reward_index,
            lm_index=torch.tensor(lm_index, dtype=torch.long),
            lm_target=torch.tensor(lm_target, dtype=torch.long),
            pair_weight=torch.empty(0),
            tokens=sum(map(len, rows)),
        )
