"""``themis sandbox``: what the test sandbox guarantees on this machine, and the hack suite's verdicts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from themis_rm.cli.base import console

sandbox_app = typer.Typer(help="The test sandbox: isolation on this machine and the hack suite.", no_args_is_help=True)


@sandbox_app.command("check")
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print the isolation and the suite as JSON.")] = False,
) -> None:
    """Probe the isolation this machine allows, run every hack, exit 1 if one fooled or escaped the sandbox."""
    from themis_rm.sandbox import isolation
    from themis_rm.sandbox.hacks import run_hack_suite, summary
    from themis_rm.sandbox.process import GUARANTEE_NAMES

    level = isolation()
    verdicts = run_hack_suite()
    result = summary(verdicts)
    if as_json:
        typer.echo(json.dumps({"isolation": {"mode": level.mode, **level.guarantees}, "hack_suite": result}, indent=1))
    else:
        console.print(level.describe())
        for name in level.missing:
            console.print(f"[yellow]missing:[/yellow] {GUARANTEE_NAMES[name]}")
        table = Table("hack", "held", "why it failed")
        for verdict in verdicts:
            why = (
                "; ".join(verdict.problems)
                or verdict.report.error
                or (verdict.report.first_failure or {}).get("error", "")
            )
            table.add_row(verdict.name, "yes" if verdict.held else "[red]NO[/red]", str(why)[:90])
        console.print(table)
        console.print(f"{result['held']}/{result['cases']} hacks held")
    if result["held"] != result["cases"]:
        raise typer.Exit(1)
