"""Held-out preference accuracy during training, overall and by aspect (ties count as wrong, as in the reference).

Pairs are length-sorted and dealt to processes batch by batch; every process runs the same number of forwards
(the short ones repeat their last batch and discard it) so FSDP's collectives line up, then results are gathered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from themis_rm.train.batching import PairCollator
from themis_rm.train.data import TrainingPair


@dataclass(frozen=True)
class EvalResult:
    """Rewards of every evaluated pair in input order."""

    chosen: np.ndarray
    rejected: np.ndarray
    aspects: list[str | None]

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        """Accuracy (strict ``>``; ties and unscored pairs count as wrong), mean margin, counts, accuracy by aspect.

        A pair is unscored (NaN) when its system prompt and template alone exceed ``max_length``; it stays in the
        denominator and is counted in ``<prefix>/dropped``.
        """
        correct = self.chosen > self.rejected
        margin = self.chosen - self.rejected
        scored = ~np.isnan(margin)
        metrics = {
            f"{prefix}/accuracy": float(correct.mean()) if len(correct) else float("nan"),
            f"{prefix}/margin": float(margin[scored].mean()) if scored.any() else float("nan"),
            f"{prefix}/ties": float(np.count_nonzero(self.chosen == self.rejected)),
            f"{prefix}/dropped": float(np.count_nonzero(~scored)),
            f"{prefix}/pairs": float(len(correct)),
        }
        by_aspect: dict[str, list[bool]] = defaultdict(list)
        for aspect, ok in zip(self.aspects, correct, strict=True):
            by_aspect[aspect or "none"].append(bool(ok))
        for aspect, oks in sorted(by_aspect.items()):
            metrics[f"{prefix}/accuracy/{aspect}"] = float(np.mean(oks))
        return metrics


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    pairs: Sequence[TrainingPair],
    collator: PairCollator,
    accelerator,
    batch_size: int,
) -> EvalResult:
    """Rewards of ``pairs`` under their evaluation system prompts (``collator.evaluation`` must be True)."""
    from accelerate.utils import gather_object

    lengths = collator.prompts.evaluation_lengths(pairs)
    order = sorted(range(len(pairs)), key=lengths.__getitem__)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    world, rank = accelerator.num_processes, accelerator.process_index
    mine = batches[rank::world]
    rounds = -(-len(batches) // world) if batches else 0
    was_training = model.training
    model.eval()
    results: list[tuple[int, float, float]] = []
    for k in range(rounds):
        real = k < len(mine)
        indices = mine[k] if real else (mine or batches)[-1]
        batch = collator([(0, i, pairs[i]) for i in indices])
        out = model(**batch.model_inputs(accelerator.device))
        if real:
            chosen, rejected = out.chosen.float().cpu().tolist(), out.rejected.float().cpu().tolist()
            weights = batch.pair_weight.tolist()
            rows = zip(batch.pair_indices, chosen, rejected, weights, strict=True)
            results += [(i, c, r) for i, c, r, w in rows if w > 0]
    model.train(was_training)
    gathered = gather_object(results) if world > 1 else results
    chosen = np.full(len(pairs), np.nan)
    rejected = np.full(len(pairs), np.nan)
    for index, c, r in gathered:
        chosen[index], rejected[index] = c, r
    return EvalResult(chosen, rejected, [p.aspect for p in pairs])
