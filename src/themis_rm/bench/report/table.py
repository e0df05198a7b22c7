"""The tables both renderers draw (Markdown and HTML), and how a number shows in them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from themis_rm.bench.report.load import MISSING


@dataclass(frozen=True)
class Cell:
    """One table cell; ``note`` (a CI) follows the text in Markdown and sits on its own line in HTML."""

    text: str
    note: str = ""  # the CI: after the text in Markdown, on its own small line in HTML


@dataclass(frozen=True)
class Table:
    """A table both renderers draw; ``numeric`` right-aligns every column after the first."""

    headers: list[str]
    rows: list[list[Cell]]
    numeric: bool = True  # right-align every column after the first
    title: str = ""


def pct(value: float | None) -> str:
    """A share as a percentage with two decimals; a missing one as :data:`MISSING`."""
    return MISSING if value is None or math.isnan(value) else f"{100 * value:.2f}"
