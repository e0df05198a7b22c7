"""``themis data``: mine commits, run the whole preference-data pipeline, print the example config.

Thin commands: options mirror the config fields, the work happens in :mod:`themis_rm.data.pipeline`. Nothing here
imports datatrove at module level, so ``themis --help`` works without the ``data`` extra.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from themis_rm.cli.base import console, fail, friendly_errors, progress_bar
from themis_rm.cli.options import config_command
from themis_rm.config import config_leaves
from themis_rm.data.bugs import MutateConfig
from themis_rm.data.config import MineRunConfig, PipelineConfig

data_app = typer.Typer(
    help="Build code-preference pairs from git history (mine, filter, dedup, label, judge, assemble).",
    no_args_is_help=True,
)


def _print_summary(summary) -> None:
    """Kept and dropped per stage and reason, then pairs per split."""
    table = Table(title="themis data: kept / dropped per stage")
    for column in ("phase", "stage", "in", "kept", "dropped (reason: n)", "other"):
        table.add_column(column)
    for s in summary.stages:
        if not (s.total or s.forwarded or s.dropped or s.other):
            continue  # writers and readers count files, not documents
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(s.dropped.items())) or "-"
        other = ", ".join(f"{k}: {v}" for k, v in sorted(s.other.items())) or "-"
        table.add_row(s.phase, s.step, str(s.total or "-"), str(s.forwarded or "-"), dropped, other)
    out = Console(width=160) if not Console().is_terminal else Console()
    out.print(table)
    if summary.pairs:
        out.print("pairs: " + ", ".join(f"{split} {n}" for split, n in summary.pairs.items()))


def _run_with_progress(job, config):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with (
        friendly_errors(),
        Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress,
    ):
        task = progress.add_task("starting", total=None)

        def on_phase(name: str, index: int, total: int) -> None:
            progress.update(task, description=f"phase {index + 1}/{total}: {name}")

        return job(config, on_phase)


def _mine(config: MineRunConfig) -> None:
    """Mine single-file, in-place modification commits, with the message rules of `data run` (no other filters)."""
    from themis_rm.data.pipeline import run_mine

    _print_summary(_run_with_progress(run_mine, config.pipeline()))


data_app.command("mine")(config_command(MineRunConfig, _mine, on_error=fail))


def _overrides(key: str) -> str:
    """Help of a ``data run`` override: the key it sets and that field's own help."""
    leaf = next(leaf for leaf in config_leaves(PipelineConfig) if leaf.yaml_key == key)
    return f"Overrides {key}: {leaf.help}"


@data_app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Pipeline YAML (see `themis data example-config`).")],
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help=_overrides("output_dir"))] = None,
    tasks: Annotated[int | None, typer.Option(help=_overrides("executor.tasks"))] = None,
    workers: Annotated[int | None, typer.Option(help=_overrides("executor.workers"))] = None,
    terms_dir: Annotated[Path | None, typer.Option(help=_overrides("aspects.terms_dir"))] = None,
) -> None:
    """Run the whole pipeline; finished tasks are skipped on a rerun, LLM answers come from the cache."""
    overrides = {
        "output_dir": str(output_dir.resolve()) if output_dir else None,
        "executor.tasks": tasks,
        "executor.workers": workers,
        "aspects.terms_dir": str(terms_dir.resolve()) if terms_dir else None,
    }
    with friendly_errors():
        from themis_rm.data.config import load_config
        from themis_rm.data.pipeline import run_pipeline

        pipeline_config = load_config(config, {k: v for k, v in overrides.items() if v is not None})
    summary = _run_with_progress(run_pipeline, pipeline_config)
    if summary is None:
        console.print("submitted to Slurm; run `themis data run` again after the jobs end for the summary")
    else:
        _print_summary(summary)


@data_app.command("example-config")
def example_config() -> None:
    """Print a commented pipeline.yaml to start from."""
    typer.echo((resources.files("themis_rm.data.resources") / "pipeline.yaml").read_text("utf-8"), nl=False)


def _mutate(config: MutateConfig) -> None:
    """Execution-verified functional-correctness pairs: mutants that fail tests the reference passes."""
    from themis_rm.data.bugs import languages_asked, run_mutation
    from themis_rm.sandbox import isolation

    level = isolation()  # at start-up, not mid-run: what the tests run under, and what is missing
    console.print(level.describe(), style="yellow" if level.missing else None)
    for language, detail in languages_asked(config).items():
        console.print(f"{language}: {detail}", style="yellow" if detail.startswith("unavailable") else None)
    with progress_bar("verifying mutants (problems)") as (_, advance):
        stats = run_mutation(config, progress=advance)
    console.print(
        f"{stats['train_pairs']} train / {stats['heldout_pairs']} held-out pairs from "
        f"{stats['problems']} problems -> {config.output} (stats.json has every count)"
    )


data_app.command("mutate")(config_command(MutateConfig, _mutate, on_error=fail))
