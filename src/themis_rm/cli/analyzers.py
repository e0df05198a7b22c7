"""``themis analyzers``: which static analyser reads which language here, and installing ESLint from npm."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from themis_rm.cli.base import console, friendly_errors

analyzers_app = typer.Typer(
    help="The static analysers of composite rewards: what each reads here, and installing ESLint.",
    no_args_is_help=True,
)


@analyzers_app.command("check")
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print the coverage as JSON.")] = False,
) -> None:
    """For every static analyser, the tool that reads each language on this machine (or why none can); exit 1 if
    a language has no tool."""
    from themis_rm.reward.static import ANALYZERS, coverage

    report = coverage(ANALYZERS)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
    else:
        table = Table("analyzer", "language", "tool")
        for name, by_language in report.items():
            for language, tool in by_language.items():
                table.add_row(name, language, tool if not tool.startswith("unavailable") else f"[red]{tool}[/red]")
        console.print(table)
    if any(tool.startswith("unavailable") for by_language in report.values() for tool in by_language.values()):
        raise typer.Exit(1)


@analyzers_app.command("install")
def install() -> None:
    """npm-install the pinned ESLint, @eslint/js, eslint-plugin-security and globals into $THEMIS_ANALYZERS
    (default: the themis cache); clang-tidy, ruff, bandit and radon come with pip install 'themis-rm[reward]'."""
    from themis_rm.reward.analyzers import eslint

    with friendly_errors():
        home = eslint.install()
    versions = ", ".join(f"{name} {version}" for name, version in eslint.versions().items())
    console.print(f"installed {versions} -> {home}")
