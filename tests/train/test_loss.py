"""The objective's pieces: BT, the two magnitude penalties, chunked cross-entropy, step-level normalisation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from themis_rm.errors import ThemisError, ThemisInputError
from themis_rm.train.loss import (
    STAT_NAMES,
    StepNorm,
    bradley_terry,
    chunked_cross_entropy,
    magnitude_penalty,
    pair_loss,
    select_lm_loss,
    stats_to_metrics,
)


def test_bradley_terry_is_ln2_at_equal_rewards_and_falls_with_the_margin():
    zero = torch.zeros(3)
    assert torch.allclose(bradley_terry(zero, zero), torch.full((3,), math.log(2)))
    assert bradley_terry(torch.tensor([2.0]), torch.tensor([0.0])) < bradley_terry(zero[:1], zero[:1])


def test_center_penalty_leaves_the_margin_free_and_abs_sum_sq_does_not():
    chosen, rejected = torch.tensor([3.0]), torch.tensor([-3.0])
    assert magnitude_penalty(chosen, rejected, "center").item() == 0.0
    assert magnitude_penalty(chosen, rejected, "abs_sum_sq").item() == 36.0
    with pytest.raises(ThemisInputError, match="--magnitude"):
        magnitude_penalty(chosen, rejected, "l2")


def test_chunked_cross_entropy_equals_the_full_one_in_value_and_gradient():
    torch.manual_seed(0)
    hidden = torch.randn(37, 8, requires_grad=True)
    head = torch.nn.Linear(8, 50, bias=False)
    targets = torch.randint(0, 50, (37,))
    full = F.cross_entropy(head(hidden), targets, reduction="sum")
    full_grads = torch.autograd.grad(full, (hidden, head.weight))
    chunked = chunked_cross_entropy(hidden, head, targets, chunk_tokens=8)
    chunked_grads = torch.autograd.grad(chunked, (hidden, head.weight))
    assert torch.allclose(chunked, full, atol=1e-4)
    for a, b in zip(chunked_grads, full_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_liger_is_not_selected_on_cpu_and_forcing_it_fails_clearly():
    _, name = select_lm_loss("auto", torch.device("cpu"), 128)
    assert name == "chunked_ce"
    with pytest.raises(ThemisError, match="liger"):
        select_lm_loss("on", torch.device("cpu"), 128)


def test_placeholder_pairs_add_nothing_to_loss_or_statistics():
    chosen, rejected = torch.tensor([1.0, 5.0]), torch.tensor([0.0, -5.0])
    zero = torch.zeros(())
    loss, stats = pair_loss(
        chosen, rejected, torch.tensor([1.0, 0.0]), zero, zero, lm_weight=0.0, magnitude_weight=0.1, magnitude="center"
    )
    expected = bradley_terry(chosen[:1], rejected[:1]) + 0.1 * magnitude_penalty(chosen[:1], rejected[:1], "center")
    assert torch.allclose(loss, expected.sum())
    values = dict(zip(STAT_NAMES, stats.tolist(), strict=True))
    assert values["pairs"] == 1 and values["chosen_sum"] == 1.0 and values["correct"] == 1.0


def test_step_metrics_are_means_over_all_micro_batches_not_the_last():
    def stats(chosen, rejected):
        zero = torch.zeros(())
        weight = torch.ones(len(chosen))
        return pair_loss(
            torch.tensor(chosen),
            torch.tensor(rejected),
            weight,
            zero,
            zero,
            lm_weight=0.0,
            magnitude_weight=0.0,
            magnitude="center",
        )[1]

    first, second = stats([2.0, 2.0], [0.0, 0.0]), stats([0.0, 0.0], [1.0, 1.0])
    metrics = stats_to_metrics(first + second)
    assert metrics["reward/accuracy"] == 0.5
    assert metrics["reward/margin"] == pytest.approx(0.5)
    assert metrics["train/pairs"] == 4


def _split_losses(sizes, step):
    """Per-micro-batch losses of 6 fixed pairs cut into ``sizes``, each with its own LM sum and token count."""
    chosen = torch.tensor([1.0, 0.5, -0.2, 2.0, 0.0, 0.3], requires_grad=True)
    rejected = torch.tensor([0.0, 0.7, -0.1, -1.0, 0.4, 0.3], requires_grad=True)
    lm = torch.tensor([3.0, 9.0, 1.0, 20.0, 4.0, 2.0], requires_grad=True)  # summed CE per pair
    tokens = torch.tensor([2.0, 5.0, 1.0, 11.0, 3.0, 1.0])  # LM tokens per pair
    total, start = torch.zeros(()), 0
    for size in sizes:
        part = slice(start, start + size)
        loss, _ = pair_loss(
            chosen[part],
            rejected[part],
            torch.ones(size),
            lm[part].sum(),
            tokens[part].sum(),
            lm_weight=0.4,
            magnitude_weight=0.1,
            magnitude="center",
            step=step,
        )
        total = total + loss / (step.replicas if step else 1)  # what accumulation / DDP averaging does
        start += size
    return torch.autograd.grad(total, (chosen, rejected, lm))


def test_step_normalised_loss_does_not_depend_on_how_the_step_is_split():
    whole = _split_losses([6], None)
    for sizes in ([3, 3], [1, 5], [2, 1, 3], [1] * 6):
        split = _split_losses(sizes, StepNorm(pairs=6.0, lm_tokens=23.0, replicas=len(sizes)))
        for a, b in zip(split, whole, strict=True):
            assert torch.allclose(a, b, atol=1e-7), sizes
    # Each micro-batch normalised by its own counts weights the 1-token pair's LM loss 23x more than the big batch.
    per_micro = _split_losses([2, 1, 3], None)
    assert not torch.allclose(per_micro[2], whole[2])


def test_objective_statistic_sums_to_the_step_loss():
    step = StepNorm(pairs=3.0, lm_tokens=10.0, replicas=2)
    parts = [
        pair_loss(
            torch.tensor(c),
            torch.tensor(r),
            torch.ones(len(c)),
            torch.tensor(s),
            torch.tensor(t),
            lm_weight=0.5,
            magnitude_weight=0.1,
            magnitude="center",
            step=step,
        )
        for c, r, s, t in (([1.0], [0.0], 4.0, 3.0), ([0.0, 2.0], [1.0, 1.0], 12.0, 7.0))
    ]
    metrics = stats_to_metrics(parts[0][1] + parts[1][1])
    expected = metrics["loss/bt"] + 0.5 * metrics["loss/lm"] + 0.1 * metrics["loss/mag"]
    assert metrics["loss/total"] == pytest.approx(expected, rel=1e-6)
    assert float(parts[0][0] + parts[1][0]) / step.replicas == pytest.approx(expected, rel=1e-6)
    assert metrics["loss/lm"] == pytest.approx(16.0 / 10.0)
