"""``themis criteria``: the criteria, their aliases and the exact prompts of the pack in use."""

from __future__ import annotations

import json
from dataclasses import dataclass

import typer
from rich.table import Table

from themis_rm.cli.base import console, fail, wide_console
from themis_rm.cli.options import config_command
from themis_rm.config import setting
from themis_rm.scoring.config import PackConfig


@dataclass(kw_only=True)
class CriteriaListing(PackConfig):
    """Criteria listing: the pack to show and how."""

    json: bool = setting(False, "Print {key: exact eval prompt} for the five criteria and Full.")
    fetch: bool = setting(False, "Download, verify and cache the official pack first.")


def _criteria(config: CriteriaListing) -> None:
    """List the criteria, their aliases and the prompt pack in use."""
    from themis_rm.criteria import CRITERIA, FULL
    from themis_rm.packs import fetch_official_pack, resolve_pack

    if config.fetch:
        console.print(f"cached the official pack at {fetch_official_pack()}")
    pack = resolve_pack(config.prompt_pack, config.criteria_file)
    if config.json:
        keys = [*CRITERIA, *(k for k in pack.keys if k not in CRITERIA), FULL]
        typer.echo(json.dumps({key: pack.eval_prompt(pack.resolve(key)) for key in keys}, indent=1, ensure_ascii=False))
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
    wide_console().print(table)
    sampling = pack.sampling
    typer.echo(
        f"training sampler: {sampling.none:.0%} none / {sampling.single:.0%} single / "
        f"{sampling.full:.0%} all five shuffled"
    )


criteria = config_command(CriteriaListing, _criteria, on_error=fail)
