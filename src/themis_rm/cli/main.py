"""The ``themis`` app: the global options and where each job's command is mounted."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.logging import RichHandler

from themis_rm.cli.analyzers import analyzers_app
from themis_rm.cli.base import console
from themis_rm.cli.bench import bench_app, report, rerank
from themis_rm.cli.criteria import criteria
from themis_rm.cli.data import data_app
from themis_rm.cli.demo import demo
from themis_rm.cli.reward import reward
from themis_rm.cli.sandbox import sandbox_app
from themis_rm.cli.score import score
from themis_rm.cli.serve import serve
from themis_rm.cli.train import train

app = typer.Typer(
    name="themis",
    help="Multi-criteria code reward models: score, bench, train, serve, data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        from themis_rm import __version__

        typer.echo(f"themis-rm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
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


app.command(name="score")(score)
app.add_typer(bench_app, name="bench")
app.command(name="rerank")(rerank)
app.command(name="reward")(reward)
app.command(name="report")(report)
app.command(name="criteria")(criteria)
app.command(name="train")(train)
app.command(name="serve")(serve)
app.add_typer(data_app, name="data")
app.command(name="demo")(demo)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(analyzers_app, name="analyzers")
