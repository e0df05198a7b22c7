"""``themis train``: one option per :class:`TrainConfig` field, over an optional recipe YAML (``--config``).

Multi-GPU launches run the same command on every process::

    accelerate launch --config_file fsdp2.yaml -m themis_rm.cli train --config pm.yaml --model M --data D --output O
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from themis_rm.cli.base import console, fail
from themis_rm.cli.options import config_command
from themis_rm.train.config import RECIPES_DIR, TrainConfig


def _train(config: TrainConfig) -> None:
    """Train a Bradley-Terry code reward model with criteria-conditioned prompts (resumable, exported as seq-cls)."""
    from themis_rm.train.loop import run_training

    with _step_bar() as on_step:
        summary = run_training(config, progress=on_step)
    if not summary.main_process:
        return
    accuracy = summary.eval_metrics.get("eval/accuracy")
    console.print(
        f"trained {summary.steps} steps (resumed from {summary.resumed_from}) in {summary.seconds:.1f} s; "
        f"loss {summary.metrics.get('loss/total', float('nan')):.4f}"
        + (f", eval accuracy {accuracy:.4f}" if accuracy is not None else "")
        + f"; counters {summary.counters} -> {summary.output}"
    )


@contextmanager
def _step_bar() -> Iterator[Callable[[int, int, dict], None]]:
    """Feedback on every run: a rich bar (step, loss, lr, tokens/s, elapsed, ETA) on a terminal; elsewhere (CI,
    ``nohup``, a pipe) one log line per metric record (``--log-every`` steps), so a run is never silent."""
    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"))
    with Progress(
        *columns, TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task("train", total=None, status="")
        started, last_record = time.perf_counter(), None

        def on_step(step: int, total: int, metrics: dict) -> None:
            nonlocal last_record
            status = step_status(metrics)
            bar.update(task, completed=step, total=total, status=status)
            if not console.is_terminal and metrics and metrics is not last_record:
                last_record = metrics
                elapsed = time.perf_counter() - started
                eta = elapsed / step * (total - step) if step else float("nan")
                console.print(f"step {step}/{total} {status} elapsed {elapsed:.0f} s eta {eta:.0f} s", highlight=False)

        yield on_step


def step_status(metrics: dict) -> str:
    """``loss 0.6931 lr 1.0e-04 1,234 tok/s`` from the latest metric record (empty before the first)."""
    parts = []
    if "loss/total" in metrics:
        parts.append(f"loss {metrics['loss/total']:.4f}")
    if "train/lr" in metrics:
        parts.append(f"lr {metrics['train/lr']:.1e}")
    if "train/tokens_per_s" in metrics:
        parts.append(f"{metrics['train/tokens_per_s']:,.0f} tok/s")
    return " ".join(parts)


train = config_command(TrainConfig, _train, on_error=fail, recipes=RECIPES_DIR)
