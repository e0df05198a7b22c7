"""``themis criteria``: the criteria, their aliases and the exact prompts of the pack in use."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import typer
from rich.table import Table

from themis_rm.cli.base import console, fail, wide_console
from themis_rm.cli.options import config_command
from themis_rm.config import setting
from themis_rm.scoring.config import PackConfig

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class CriteriaListing(PackConfig):
    """Criteria listing: the pack to show and how."""

    json: bool = setting(False, "Print {key: exact eval prompt} for the five criteria and Full.")
    fetch: bool = setting(False, "Download, verify and cache the official pack first.")


def _criteria(config: CriteriaListing) -> None:
    """List the criteria, their aliases and the prompt pack in use."""
    from themis_rm.criteria import CRITERIA, FULL, builtin_aliases
    from themis_rm.errors import PromptPackError
    from themis_rm.packs import fetch_official_pack, resolve_pack

    if config.fetch:
        console.print(f"cached the official pack at {fetch_official_pack()}")
    try:
        pack = resolve_pack(config.prompt_pack, config.criteria_file)
    except PromptPackError as exc:
        if config.json or config.prompt_pack is not None or config.criteria_file is not None:
            raise  # the prompt strings were asked for, or a named pack is broken
        _table("criteria — no prompt pack available (names and aliases only)", builtin_aliases(), None)
        console.print(
            "The prompt strings need a pack: `themis criteria --fetch` (the official Themis strings, once, online), "
            "or `--prompt-pack open` (themis-rm's own wording).",
            highlight=False,
        )
        logger.debug("no pack: %s", exc)
        return
    if config.json:
        keys = [*CRITERIA, *(k for k in pack.keys if k not in CRITERIA), FULL]
        typer.echo(json.dumps({key: pack.eval_prompt(pack.resolve(key)) for key in keys}, indent=1, ensure_ascii=False))
        return
    aliases = {
        key: sorted(a for a in pack.valid_names() if a not in pack.keys and pack.resolve(a) == (key,))
        for key in pack.keys
    }
    _table(f"criteria — prompt pack {pack.name} (sha256 {pack.sha256[:12]})", aliases, pack)
    sampling = pack.sampling
    typer.echo(
        f"training sampler: {sampling.none:.0%} none / {sampling.single:.0%} single / "
        f"{sampling.full:.0%} all five shuffled"
    )


def _table(title: str, aliases: dict[str, list[str]], pack) -> None:
    """One row per criterion (aliases, and the eval prompt's length when a pack is loaded), then Full and none."""
    from themis_rm.criteria import FULL

    table = Table(title=title)
    for column in ("criterion", "aliases", "eval prompt chars"):
        table.add_column(column)

    def chars(selection) -> str:
        return str(len(pack.eval_prompt(selection) or "")) if pack is not None else "-"

    for key, names in aliases.items():
        table.add_row(key, ", ".join(names), chars((key,)))
    table.add_row(FULL, "full, all", chars(pack.resolve(FULL)) if pack is not None else "-")
    table.add_row("none", "", "0 (no system prompt)")
    wide_console().print(table)


criteria = config_command(CriteriaListing, _criteria, on_error=fail)
