"""The training objective: Bradley-Terry + λ·LM (chosen response tokens only) + μ·reward magnitude penalty.

The LM loss never builds the (batch, time, vocab) logits: only positions whose next token is a chosen response
token are gathered (``lm_index``), and their logits are made either by liger-kernel's fused linear cross-entropy
(CUDA) or chunk by chunk with recomputation in the backward pass (anywhere), so at most ``chunk x vocab`` logits
exist at a time.

The objective is normalised per optimizer *step*, not per micro-batch: the BT and magnitude terms are divided by
the real pairs, the LM term by the LM target tokens, of all the step's micro-batches on all processes
(:class:`StepNorm`). A per-micro-batch mean would make the gradient depend on how the step is split: tokens of a
short, length-grouped micro-batch would weigh more, and results would change with micro-batch size, accumulation
and process count. With the step totals, one step's gradient equals that of the same pairs in one big batch.

Per-micro-batch statistics are returned as *sums* (:data:`STAT_NAMES`) so the loop can add them over micro-batches
and processes before dividing: logged metrics are true means over the whole optimizer step, not the last
micro-batch of rank 0 as in the reference trainer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from themis_rm.errors import MissingExtraError, ThemisInputError

# Order of the entries of the statistics vector every forward returns.
# ``objective``: this micro-batch's share of the optimised step loss (summed, it is the step loss itself).
STAT_NAMES = (
    "pairs", "bt_sum", "lm_sum", "lm_tokens", "mag_sum", "chosen_sum", "rejected_sum", "correct", "objective"
)  # fmt: skip
LMLossFn = Callable[[torch.Tensor, nn.Module, torch.Tensor], torch.Tensor]  # (hidden, lm_head, targets) -> sum


class StepNorm(NamedTuple):
    """The denominators of one optimizer step's loss, the same on every micro-batch and process of the step.

    ``replicas`` is how many micro-batch gradients the machinery averages rather than sums: accelerate's
    ``backward`` divides each loss by the accumulation steps, and DDP / FSDP / DeepSpeed average gradients over
    processes. Each micro-batch's loss is multiplied by it, so the averaged gradient is the step objective's.
    Plain floats, not tensors: FSDP's mixed precision would cast tensor inputs of ``forward`` to bf16.
    """

    pairs: float  # real (weight > 0) pairs of the whole step
    lm_tokens: float  # LM target tokens of the whole step
    replicas: int = 1  # accumulation steps x processes


def bradley_terry(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair ``-log σ(r_c - r_r)`` (shape ``(B,)``, fp32)."""
    return -F.logsigmoid(chosen - rejected)


def magnitude_penalty(chosen: torch.Tensor, rejected: torch.Tensor, form: str) -> torch.Tensor:
    """Per-pair penalty: ``center`` = (r_c + r_r)² (paper), ``abs_sum_sq`` = (|r_c| + |r_r|)² (authors' code)."""
    if form == "center":
        return (chosen + rejected).square()
    if form == "abs_sum_sq":
        return (chosen.abs() + rejected.abs()).square()
    raise ThemisInputError(f"--magnitude must be 'center' or 'abs_sum_sq', got {form!r}")


def chunked_cross_entropy(
    hidden: torch.Tensor, head: nn.Module, targets: torch.Tensor, chunk_tokens: int = 4096
) -> torch.Tensor:
    """Summed next-token cross-entropy of ``head(hidden)`` without keeping the logits.

    Args:
        hidden: ``(N, H)`` hidden states at the positions before each target.
        head: the LM head (called as a module, so FSDP's hooks gather its weight).
        targets: ``(N,)`` token ids.

    Each chunk's logits are recomputed in the backward pass (activation checkpointing), so peak memory is one
    ``(chunk_tokens, V)`` fp32 block instead of ``(N, V)``.
    """

    def ce_sum(part: torch.Tensor, part_targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(head(part).float(), part_targets, reduction="sum")

    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], chunk_tokens):
        end = start + chunk_tokens
        total = total + checkpoint(ce_sum, hidden[start:end], targets[start:end], use_reentrant=False)
    return total


def select_lm_loss(liger: str, device: torch.device, chunk_tokens: int) -> tuple[LMLossFn, str]:
    """The summed LM loss function and its name: liger's fused kernel on CUDA, else chunked cross-entropy.

    liger-kernel imports on a CPU box but every kernel call fails there (no Triton driver), so ``auto`` turns it
    on only with CUDA; ``on`` without it installed fails here, naming the extra.
    """
    available = importlib.util.find_spec("liger_kernel") is not None
    wanted = liger == "on" or (liger == "auto" and device.type == "cuda" and available)
    if wanted:
        if not available:
            raise MissingExtraError("liger-kernel", "gpu")
        if device.type != "cuda":
            raise ThemisInputError(f"--liger on needs a CUDA device (training on {device.type}); use --liger auto")
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        fused = LigerFusedLinearCrossEntropyLoss(reduction="sum")
        # Reads the weight directly: under FSDP2 accelerate groups lm_head with the final norm and keeps that
        # group gathered after the norm's forward (reshard_after_forward=False), so the full weight is there.
        return (lambda hidden, head, targets: fused(head.weight, hidden, targets)), "liger_fused_linear_ce"

    def chunked(hidden: torch.Tensor, head: nn.Module, targets: torch.Tensor) -> torch.Tensor:
        return chunked_cross_entropy(hidden, head, targets, chunk_tokens)

    return chunked, "chunked_ce"


def pair_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    pair_weight: torch.Tensor,
    lm_sum: torch.Tensor,
    lm_tokens: torch.Tensor,
    *,
    lm_weight: float,
    magnitude_weight: float,
    magnitude: str,
    step: StepNorm | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss to back-propagate for one micro-batch and its statistics vector (sums, detached).

    The micro-batch's share of the step objective is ``Σ bt / P + μ Σ mag / P + λ Σ ce / T`` with ``P``, ``T``
    the step's pairs and LM tokens (``step``); the returned loss is that share times ``step.replicas``, which the
    gradient averaging divides out again. Without ``step`` the micro-batch is its own step (its own counts,
    one replica): evaluation and direct calls.

    ``pair_weight`` is 0 for placeholder pairs (kept only so that every process runs the same forwards when a
    whole micro-batch was dropped for length); they add nothing to the loss, the denominators or the statistics.
    """
    pairs = pair_weight.sum()
    bt = bradley_terry(chosen, rejected) * pair_weight
    mag = magnitude_penalty(chosen, rejected, magnitude) * pair_weight
    if step is None:
        pair_norm, lm_norm, replicas = pairs.clamp(min=1.0), lm_tokens.clamp(min=1.0), 1
    else:
        pair_norm, lm_norm, replicas = max(step.pairs, 1.0), max(step.lm_tokens, 1.0), step.replicas
    share = bt.sum() / pair_norm + magnitude_weight * mag.sum() / pair_norm
    if lm_weight:
        share = share + lm_weight * lm_sum / lm_norm
    with torch.no_grad():
        stats = torch.stack(
            [
                pairs,
                bt.sum(),
                lm_sum.detach().float(),
                lm_tokens.float(),
                mag.sum(),
                (chosen * pair_weight).sum(),
                (rejected * pair_weight).sum(),
                ((chosen > rejected).float() * pair_weight).sum(),
                share.detach().float(),
            ]
        )
    return share * replicas, stats


def stats_to_metrics(stats: torch.Tensor | list[float], steps: int = 1) -> dict[str, float]:
    """Summed statistics of ``steps`` optimizer steps (over micro-batches and processes) -> the logged means.

    ``loss/total`` is the optimised step loss averaged over the steps; the parts are pooled over the window's pairs
    and tokens, so with one step per record ``loss/total == loss/bt + λ·loss/lm + μ·loss/mag`` (up to float rounding).
    """
    values = dict(zip(STAT_NAMES, (float(v) for v in stats), strict=True))
    pairs = max(values["pairs"], 1.0)
    bt = values["bt_sum"] / pairs
    lm = values["lm_sum"] / max(values["lm_tokens"], 1.0)
    mag = values["mag_sum"] / pairs
    chosen, rejected = values["chosen_sum"] / pairs, values["rejected_sum"] / pairs
    return {
        "loss/total": values["objective"] / max(steps, 1),
        "loss/bt": bt,
        "loss/lm": lm,
        "loss/mag": mag,
        "reward/chosen_mean": chosen,
        "reward/rejected_mean": rejected,
        "reward/margin": chosen - rejected,
        "reward/accuracy": values["correct"] / pairs,
        "train/pairs": values["pairs"],
        "train/lm_tokens": values["lm_tokens"],
    }
