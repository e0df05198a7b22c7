"""``themis train``: one option per ``TrainConfig`` field (help text from the field), over an optional recipe YAML.

Mounted in the main app with ``app.command()(train)``; also runnable on its own, which is what multi-GPU launches
use::

    accelerate launch --config_file fsdp2.yaml -m themis_rm.train.cli --config pm.yaml --model M --data D --output O
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from themis_rm.errors import ThemisError
from themis_rm.train.config import TrainConfig, all_field_names, field_help, load_recipe

console = Console(stderr=True)
_FIELDS = frozenset(all_field_names())


def _opt(name: str, *flags: str) -> typer.models.OptionInfo:
    return typer.Option(*flags, help=field_help(name))


def train(
    config: Annotated[
        Path | None, typer.Option("--config", help="Recipe YAML (configs/pt.yaml, pm.yaml); flags override it.")
    ] = None,
    model: Annotated[str | None, _opt("model")] = None,
    data: Annotated[str | None, _opt("data")] = None,
    output: Annotated[Path | None, _opt("output", "--output", "-o")] = None,
    eval_data: Annotated[str | None, _opt("eval_data")] = None,
    split: Annotated[str | None, _opt("split")] = None,
    eval_split: Annotated[str | None, _opt("eval_split")] = None,
    prompts: Annotated[str | None, _opt("prompts")] = None,
    criteria_file: Annotated[Path | None, _opt("criteria_file")] = None,
    prompt_mix: Annotated[str | None, _opt("prompt_mix")] = None,
    skip_invalid: Annotated[bool | None, _opt("skip_invalid", "--skip-invalid/--no-skip-invalid")] = None,
    seed: Annotated[int | None, _opt("seed")] = None,
    resume: Annotated[str | None, _opt("resume")] = None,
    lm_weight: Annotated[float | None, _opt("lm_weight")] = None,
    magnitude_weight: Annotated[float | None, _opt("magnitude_weight")] = None,
    magnitude: Annotated[str | None, _opt("magnitude")] = None,
    lm_chunk_tokens: Annotated[int | None, _opt("lm_chunk_tokens")] = None,
    liger: Annotated[str | None, _opt("liger")] = None,
    lr: Annotated[float | None, _opt("lr")] = None,
    min_lr: Annotated[float | None, _opt("min_lr")] = None,
    warmup_ratio: Annotated[float | None, _opt("warmup_ratio")] = None,
    weight_decay: Annotated[float | None, _opt("weight_decay")] = None,
    adam_beta1: Annotated[float | None, _opt("adam_beta1")] = None,
    adam_beta2: Annotated[float | None, _opt("adam_beta2")] = None,
    adam_eps: Annotated[float | None, _opt("adam_eps")] = None,
    max_grad_norm: Annotated[float | None, _opt("max_grad_norm")] = None,
    fused: Annotated[str | None, _opt("fused")] = None,
    batch_size: Annotated[int | None, _opt("batch_size")] = None,
    micro_batch_size: Annotated[int | None, _opt("micro_batch_size")] = None,
    max_length: Annotated[int | None, _opt("max_length")] = None,
    overflow: Annotated[str | None, _opt("overflow")] = None,
    prompt_overflow: Annotated[str | None, _opt("prompt_overflow")] = None,
    packing: Annotated[str | None, _opt("packing")] = None,
    num_workers: Annotated[int | None, _opt("num_workers")] = None,
    eval_batch_size: Annotated[int | None, _opt("eval_batch_size")] = None,
    epochs: Annotated[int | None, _opt("epochs")] = None,
    max_steps: Annotated[int | None, _opt("max_steps")] = None,
    mixed_precision: Annotated[str | None, _opt("mixed_precision")] = None,
    dtype: Annotated[str | None, _opt("dtype")] = None,
    attn_implementation: Annotated[str | None, _opt("attn_implementation")] = None,
    gradient_checkpointing: Annotated[
        bool | None, _opt("gradient_checkpointing", "--gradient-checkpointing/--no-gradient-checkpointing")
    ] = None,
    log_every: Annotated[int | None, _opt("log_every")] = None,
    eval_every: Annotated[int | None, _opt("eval_every")] = None,
    save_every: Annotated[int | None, _opt("save_every")] = None,
    keep_checkpoints: Annotated[int | None, _opt("keep_checkpoints")] = None,
    report_to: Annotated[str | None, _opt("report_to")] = None,
    export_dtype: Annotated[str | None, _opt("export_dtype")] = None,
    lora_r: Annotated[int | None, _opt("lora_r")] = None,
    lora_alpha: Annotated[int | None, _opt("lora_alpha")] = None,
    lora_dropout: Annotated[float | None, _opt("lora_dropout")] = None,
    lora_target_modules: Annotated[str | None, _opt("lora_target_modules")] = None,
) -> None:
    """Train a Bradley-Terry code reward model with criteria-conditioned prompts (resumable, exported as seq-cls)."""
    overrides = {name: value for name, value in locals().items() if name in _FIELDS}
    from themis_rm.train.loop import run_training

    try:
        base = load_recipe(config) if config is not None else TrainConfig()
        resolved = base.with_overrides(overrides)
        resolved.validate()
        with _ProgressBar() as on_step:
            summary = run_training(resolved, progress=on_step)
    except ThemisError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not summary.main_process:
        return
    accuracy = summary.eval_metrics.get("eval/accuracy")
    console.print(
        f"trained {summary.steps} steps (resumed from {summary.resumed_from}) in {summary.seconds:.1f} s; "
        f"loss {summary.metrics.get('loss/total', float('nan')):.4f}"
        + (f", eval accuracy {accuracy:.4f}" if accuracy is not None else "")
        + f"; counters {summary.counters} -> {summary.output}"
    )


class _ProgressBar:
    """A rich bar fed by the loop's progress callback (step, total, metrics); quiet when not a terminal."""

    def __enter__(self):
        self._bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task("train", total=None, loss="")

        def on_step(step: int, total: int, metrics) -> None:
            loss = metrics.get("loss/total")
            self._bar.update(self._task, completed=step, total=total, loss=f"loss {loss:.4f}" if loss else "")

        return on_step

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)


def main() -> None:
    """Entry point of ``python -m themis_rm.train.cli`` (what ``accelerate launch -m`` runs on every process)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    typer.run(train)


if __name__ == "__main__":
    main()
