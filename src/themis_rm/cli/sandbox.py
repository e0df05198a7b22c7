"""``themis sandbox``: what the test sandbox guarantees on this machine, and the hack suites' verdicts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from themis_rm.cli.base import console

sandbox_app = typer.Typer(help="The test sandbox: isolation on this machine and the hack suite.", no_args_is_help=True)


@sandbox_app.command("check")
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print the isolation and the suites as JSON.")] = False,
) -> None:
    """Probe the isolation and toolchains this machine has, run every hack suite (function calls in Python and
    JavaScript, input/output in every installed language), exit 1 if one hack fooled or escaped the sandbox."""
    from themis_rm.sandbox import isolation
    from themis_rm.sandbox.check import describe, machine_report, run_suites
    from themis_rm.sandbox.process import GUARANTEE_NAMES
    from themis_rm.sandbox.toolchains import describe_available

    level = isolation()
    if not as_json:
        console.print(level.describe())
        for name in level.missing:
            console.print(f"[yellow]missing:[/yellow] {GUARANTEE_NAMES[name]}")
        console.print(describe_available())
    suites = run_suites()
    report = machine_report(suites)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
    else:
        table = Table("suite", "hack", "held", "why it failed")
        for suite, verdicts in suites.items():
            if isinstance(verdicts, str):
                table.add_row(suite, "-", "-", verdicts)
                continue
            for verdict in verdicts:
                why = (
                    "; ".join(verdict.problems)
                    or verdict.report.error
                    or (verdict.report.first_failure or {}).get("error", "")
                )
                held = "yes" if verdict.held else "[red]NO[/red]"
                table.add_row(suite, verdict.name.rsplit("/", 1)[-1], held, str(why)[:80])
        console.print(table)
        console.print(describe(report))
    if report["held"] != report["cases"]:
        raise typer.Exit(1)
