"""Held-out preference accuracy during training, overall and by aspect (ties count as wrong, as in the reference).

Pairs are length-sorted and dealt to processes batch by batch; every process runs the same number of forwards
(the short ones repeat their last batch and discard it) so FSDP's collectives line up, then results are gathered.
The accuracy is the benchmark's own (:func:`themis_rm.bench.metrics.pair_credit`), so a training eval and a
``themis bench`` run over the same pairs agree on what counts as right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from themis_rm.bench.metrics import nan_count, pair_credit, scores_frame, tie_count
from themis_rm.train.batching import PairCollator
from themis_rm.train.data import TrainingPair


@dataclass(frozen=True)
class EvalResult:
    """Rewards of every evaluated pair in input order."""

    chosen: np.ndarray
    rejected: np.ndarray
    aspects: list[str | None]
    identical: np.ndarray | None = None  # bool per pair: both sides rendered to the same tokens

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        """Accuracy (strict ``>``; ties and unscored pairs count as wrong), mean margin, counts, accuracy by aspect.

        A pair is unscored (NaN) when its system prompt and template alone exceed ``max_length``; it stays in the
        denominator and is counted in ``<prefix>/dropped``. A pair whose sides rendered identical leaves the
        denominator and is counted in ``<prefix>/identical`` (``themis bench`` drops it the same way). Values are not
        rounded (``results.json`` rounds).
        """
        keep = ~self.identical if self.identical is not None else np.ones(len(self.aspects), dtype=bool)
        aspects = [a for a, k in zip(self.aspects, keep, strict=True) if k]
        n = len(aspects)
        frame = scores_frame(
            ids=[str(i) for i in range(n)],
            chosen=self.chosen[keep],
            rejected=self.rejected[keep],
            language=[None] * n,
            aspect=[aspect or "none" for aspect in aspects],
            subset=[None] * n,
        )
        credit = pair_credit(frame, ties="wrong")
        metrics = {
            f"{prefix}/accuracy": float(credit.mean()) if n else float("nan"),
            f"{prefix}/margin": float(frame["score_diff"].mean()),  # NaN pairs skipped; all NaN gives NaN
            f"{prefix}/ties": float(tie_count(frame)),
            f"{prefix}/dropped": float(nan_count(frame)),
            f"{prefix}/pairs": float(n),
            f"{prefix}/identical": float(len(keep) - n),
        }
        for aspect, accuracy in credit.groupby(frame["aspect"], sort=True).mean().items():
            metrics[f"{prefix}/accuracy/{aspect}"] = float(accuracy)
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
    identical: list[int] = []
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
            identical += batch.identical_indices
    model.train(was_training)
    gathered = gather_object(results) if world > 1 else results
    chosen = np.full(len(pairs), np.nan)
    rejected = np.full(len(pairs), np.nan)
    for index, c, r in gathered:
        chosen[index], rejected[index] = c, r
    same = np.zeros(len(pairs), dtype=bool)
    same[gather_object(identical) if world > 1 else identical] = True
    return EvalResult(chosen, rejected, [p.aspect for p in pairs], same)
