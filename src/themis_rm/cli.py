"""The ``themis`` command line: thin typer commands over the job functions, with rich progress and summaries."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from themis_rm.errors import ThemisError

app = typer.Typer(
    name="themis",
    help="Multi-criteria code reward models: score, bench, train, serve, data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

PromptsOption = Annotated[
    str | None,
    typer.Option(
        "--prompts",
        help="Prompt pack: 'official' (Themis strings, fetched and verified), 'open' (ours), or a JSON "
        "file in the layout of themis_system_prompts.json. Default: $THEMIS_PROMPTS, then 'official'.",
    ),
]
CriteriaFileOption = Annotated[
    Path | None,
    typer.Option("--criteria-file", help="TOML with user-defined [[criteria]] (key, title, text, aliases)."),
]


def _version_callback(value: bool) -> None:
    if value:
        from themis_rm import __version__

        typer.echo(f"themis-rm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each phase.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _wide_console() -> Console:
    """Stdout console; 120 columns when not a terminal (logs, CI) so tables are not cut."""
    plain = Console()
    return plain if plain.is_terminal else Console(width=120)


@contextmanager
def _friendly_errors():
    """Our own errors print as one red line and exit 2, without a traceback."""
    try:
        yield
    except ThemisError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def progress_bar(description: str):
    """A rich progress bar; yields (set_total, advance) callbacks for the library's loops."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=None)
        yield (lambda total: progress.update(task, total=total)), (lambda n: progress.advance(task, n))


@app.command()
def score(
    model: Annotated[str, typer.Option(help="Reward model: hub id or local directory.")],
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="Pairs or responses: .jsonl/.json/.parquet/.csv, "
            "a save_to_disk directory, or a hub dataset id.",
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Scores: .jsonl (settings beside it) or .json.")
    ],
    criterion: Annotated[
        str,
        typer.Option(
            help="Criteria: a name or alias (runtime, security, ...), a comma list, "
            "'full', 'none', or 'aspect' (each row's own aspect)."
        ),
    ] = "none",
    prompts: PromptsOption = None,
    criteria_file: CriteriaFileOption = None,
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, ...")] = "auto",
    max_length: Annotated[
        int, typer.Option(help="Token budget per sequence; only responses are cut.")
    ] = 4096,
    batch_tokens: Annotated[int | None, typer.Option(help="Padded tokens per forward pass.")] = None,
    split: Annotated[str | None, typer.Option(help="Split of a dataset directory or hub id.")] = None,
    id_field: Annotated[str, typer.Option("--id-field")] = "id",
    prompt_field: Annotated[str, typer.Option("--prompt-field")] = "prompt",
    chosen_field: Annotated[str, typer.Option("--chosen-field")] = "chosen",
    rejected_field: Annotated[str, typer.Option("--rejected-field")] = "rejected",
    response_field: Annotated[str, typer.Option("--response-field")] = "response",
    aspect_field: Annotated[str, typer.Option("--aspect-field")] = "aspect",
    skip_invalid: Annotated[bool, typer.Option(help="Count and report bad rows instead of failing.")] = False,
) -> None:
    """Score responses (or chosen and rejected of each pair) with a reward model under chosen criteria."""
    from themis_rm.pairs import FieldMap
    from themis_rm.scoring.job import ScoreConfig, run_score

    fields = FieldMap(
        id=id_field,
        prompt=prompt_field,
        chosen=chosen_field,
        rejected=rejected_field,
        response=response_field,
        aspect=aspect_field,
    )
    config = ScoreConfig(
        model=model,
        input=input,
        output=output,
        criterion=criterion,
        prompts=prompts,
        criteria_file=criteria_file,
        dtype=dtype,
        device=device,
        max_length=max_length,
        batch_tokens=batch_tokens,
        fields=fields,
        split=split,
        skip_invalid=skip_invalid,
    )
    with _friendly_errors(), progress_bar("scoring") as (set_total, advance):
        summary = run_score(config, on_loaded=set_total, progress=advance)
    console.print(
        f"scored {summary.rows} rows ({summary.sequences} sequences) in {summary.seconds:.1f} s: "
        f"{summary.rows_per_s:.1f} rows/s; truncated {summary.truncated}, skipped {summary.skipped} "
        f"-> {summary.output}"
    )


@app.command()
def criteria(
    prompts: PromptsOption = None,
    criteria_file: CriteriaFileOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {key: exact eval prompt} for the five criteria and Full.")
    ] = False,
    fetch: Annotated[
        bool, typer.Option("--fetch", help="Download, verify and cache the official pack.")
    ] = False,
) -> None:
    """List the criteria, their aliases and the prompt pack in use."""
    from themis_rm.criteria import CRITERIA, FULL
    from themis_rm.packs import fetch_official_pack
    from themis_rm.scoring.job import resolve_pack

    with _friendly_errors():
        if fetch:
            console.print(f"cached the official pack at {fetch_official_pack()}")
        pack = resolve_pack(prompts, criteria_file)
    if as_json:
        keys = [*CRITERIA, *(k for k in pack.keys if k not in CRITERIA), FULL]
        typer.echo(
            json.dumps(
                {key: pack.eval_prompt(pack.resolve(key)) for key in keys}, indent=1, ensure_ascii=False
            )
        )
        return
    table = Table(title=f"criteria — prompt pack {pack.name} (sha256 {pack.sha256[:12]})")
    for column in ("criterion", "aliases", "eval prompt chars"):
        table.add_column(column)
    aliases = {
        key: sorted(a for a in pack.valid_names() if a not in pack.keys and pack.resolve(a) == (key,))
        for key in pack.keys
    }
    for key in pack.keys:
        table.add_row(key, ", ".join(aliases[key]), str(len(pack.eval_prompt((key,)) or "")))
    table.add_row(FULL, "full, all", str(len(pack.eval_prompt(pack.resolve(FULL)) or "")))
    table.add_row("none", "", "0 (no system prompt)")
    _wide_console().print(table)
    sampling = pack.sampling
    typer.echo(
        f"training sampler: {sampling.none:.0%} none / {sampling.single:.0%} single / "
        f"{sampling.full:.0%} all five shuffled"
    )


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where the demo writes its artefacts.")
    ] = Path("demo-output"),
    prompts: PromptsOption = None,
) -> None:
    """Offline demo: build a tiny reward model and score bundled sample pairs under every criterion."""
    from themis_rm.demo import run_demo

    with _friendly_errors():
        result = run_demo(output, prompts=prompts, console=_wide_console())
    console.print(f"demo artefacts in {result.output}")


if __name__ == "__main__":
    app()
