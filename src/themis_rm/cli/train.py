"""``themis train``: one option per :class:`TrainConfig` field, over an optional recipe YAML (``--config``).

Multi-GPU launches run the same command on every process::

    accelerate launch --config_file fsdp2.yaml -m themis_rm.cli train --config pm.yaml --model M --data D --output O
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from themis_rm.cli.base import console, fail
from themis_rm.cli.options import config_command
from themis_rm.train.config import TrainConfig


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
    """A rich bar fed by the loop's progress callback (step, total, metrics); quiet when not a terminal."""
    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"))
    with Progress(
        *columns, TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task("train", total=None, loss="")

        def on_step(step: int, total: int, metrics: dict) -> None:
            loss = metrics.get("loss/total")
            bar.update(task, completed=step, total=total, loss=f"loss {loss:.4f}" if loss else "")

        yield on_step


train = config_command(TrainConfig, _train, on_error=fail)
