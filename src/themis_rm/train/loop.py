"""``themis train``: the Bradley-Terry training loop, written out on accelerate (one process, DDP, FSDP2, ZeRO-3).

One optimizer step = ``grad_accum`` micro-batches per process under ``accelerator.accumulate``, then clipping, the
AdamW step and one scheduler step. The step's micro-batches are collated first and their real pairs and LM tokens
summed over processes (:func:`_step_norm`), so the loss is normalised by the whole step and the gradient does not
depend on how the step is split into micro-batches and processes. Statistics are summed over every micro-batch
and process of the logging window before they are divided (the reference logged rank 0's last micro-batch).
Set-up, resume, export and ``run.json`` live in ``session.py``; the batches come from ``batching.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

import torch
from torch.utils.data import DataLoader

from themis_rm.faults import crash_point
from themis_rm.train.batching import PairBatch, PairDataset, StepSampler, plan_epoch
from themis_rm.train.config import TrainConfig
from themis_rm.train.loss import STAT_NAMES, StepNorm, stats_to_metrics
from themis_rm.train.metrics import MetricSink
from themis_rm.train.session import RUN_FILE, TrainRun, TrainSummary, finish_run, start_run

__all__ = ["RUN_FILE", "ProgressCallback", "TrainSummary", "run_training"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, Mapping[str, float]], None]  # (step, total_steps, latest metrics)


def run_training(
    config: TrainConfig, progress: ProgressCallback | None = None, sinks: Sequence[MetricSink] | None = None
) -> TrainSummary:
    """Train, evaluate, checkpoint and export as ``config`` says; returns the summary (on every process)."""
    run = start_run(config, sinks)
    accelerator, model, optimizer, scheduler, state = (
        run.accelerator, run.model, run.optimizer, run.scheduler, run.state
    )  # fmt: skip
    window = _Window(accelerator.device)
    last_metrics: dict[str, float] = {}
    eval_metrics: dict[str, float] = {}
    model.train()
    while state.global_step < run.total_steps:
        plan = plan_epoch(
            run.data.prompts.training_lengths(run.data.train, state.epoch),
            batch_size=config.batch.batch_size,
            micro_batch_size=config.batch.micro_batch_size,
            world_size=accelerator.num_processes,
            seed=config.seed,
            epoch=state.epoch,
        )
        if state.step_in_epoch == 0:  # the shuffle's tail waits for the next epoch
            state.counters["epoch_tail_pairs"] += len(run.data.train) - len(plan) * config.batch.batch_size
        micro_batches = iter(_loader(run, plan))
        while state.step_in_epoch < len(plan) and state.global_step < run.total_steps:
            lr = scheduler.get_last_lr()[0]
            batches = [next(micro_batches) for _ in range(accelerator.gradient_accumulation_steps)]
            step_norm = _step_norm(accelerator, batches)
            for batch in batches:
                with accelerator.accumulate(model):
                    out = model(**batch.model_inputs(accelerator.device), step_norm=step_norm)
                    accelerator.backward(out.loss)
                    grad_norm = _clip(accelerator, model, config.optim.max_grad_norm)
                    optimizer.step()
                    if accelerator.sync_gradients:
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                window.add(out.stats, batch.tokens)
                state.pending.update(batch.counts)
            window.steps += 1
            state.global_step += 1
            state.step_in_epoch += 1
            if state.global_step % config.run.log_every == 0 or state.global_step == run.total_steps:
                last_metrics = window.reduce(accelerator)
                epoch = state.epoch + state.step_in_epoch / run.steps_per_epoch
                norm = float(grad_norm) if grad_norm is not None else float("nan")
                last_metrics.update({"train/lr": lr, "train/grad_norm": norm, "train/epoch": epoch})
                run.log(last_metrics)
            if config.run.eval_every and state.global_step % config.run.eval_every == 0:
                eval_metrics = run.evaluate()
            if config.run.save_every and state.global_step % config.run.save_every == 0:
                run.save()
            crash_point("train.step", state.global_step)  # THEMIS_CRASH_AT: resume tests die exactly here
            if progress is not None and accelerator.is_main_process:
                progress(state.global_step, run.total_steps, last_metrics)
        if state.step_in_epoch >= len(plan):
            state.epoch, state.step_in_epoch = state.epoch + 1, 0
    return finish_run(run, last_metrics, eval_metrics)


def _loader(run: TrainRun, plan: list[list[list[int]]]) -> DataLoader:
    """This process's micro-batches of one epoch from the current data position (workers render ahead).

    The loader gets its own generator: each new iterator draws a worker base seed, and drawing it from the global
    torch RNG would shift the dropout masks of a resumed run (its loader starts mid-epoch, after the RNG restore).
    """
    accelerator, state = run.accelerator, run.state
    return DataLoader(
        PairDataset(run.data.train),
        batch_sampler=StepSampler(plan, accelerator.process_index, state.epoch, state.step_in_epoch),
        collate_fn=run.data.train_collator,
        num_workers=run.config.batch.num_workers,
        pin_memory=accelerator.device.type == "cuda",
        generator=torch.Generator().manual_seed(run.config.seed + state.epoch),
    )


def _step_norm(accelerator, batches: Sequence[PairBatch]) -> StepNorm:
    """Real pairs and LM target tokens of one optimizer step, summed over its micro-batches and all processes.

    The counts are known on the host once the step's micro-batches are collated, so one process needs no
    collective and no device sync; several processes sum them in one small all-reduce per step.
    """
    counts = [sum(int(b.pair_weight.gt(0).sum()) for b in batches), sum(b.lm_index.numel() for b in batches)]
    if accelerator.num_processes > 1:
        local = torch.tensor(counts, dtype=torch.long, device=accelerator.device)
        counts = accelerator.reduce(local, reduction="sum").tolist()
    replicas = accelerator.gradient_accumulation_steps * accelerator.num_processes
    return StepNorm(pairs=float(counts[0]), lm_tokens=float(counts[1]), replicas=replicas)


def _clip(accelerator, model: torch.nn.Module, max_norm: float) -> torch.Tensor | None:
    """Clip the global gradient norm on the synchronising micro-batch and return the pre-clip norm.

    The norm stays a device tensor until it is logged (no host sync per step); None while accumulating, with
    clipping off, or under DeepSpeed (its engine clips).
    """
    if not accelerator.sync_gradients or not max_norm:
        return None
    return accelerator.clip_grad_norm_(model.parameters(), max_norm)


class _Window:
    """Summed statistics and tokens since the last record, kept on the device: no sync per micro-batch."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._reset()

    def _reset(self) -> None:
        self.sums = torch.zeros(len(STAT_NAMES) + 1, device=self.device)
        self.steps = 0  # optimizer steps in the window: loss/total is their mean step loss
        self.since = time.perf_counter()

    def add(self, stats: torch.Tensor, tokens: int) -> None:
        self.sums[:-1] += stats.detach().float()
        self.sums[-1] += tokens

    def reduce(self, accelerator) -> dict[str, float]:
        """Sum over processes (one collective, one host sync), turn into means, start a new window."""
        total = accelerator.reduce(self.sums, reduction="sum").cpu()
        metrics = stats_to_metrics(total[:-1], self.steps)
        metrics["train/tokens_per_s"] = float(total[-1]) / max(time.perf_counter() - self.since, 1e-9)
        self._reset()
        return metrics
