"""What every analyser returns, and the batch directory it reads candidates from."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAX_FINDINGS_KEPT = 20  # evidence per candidate; the value counts them all


@dataclass(frozen=True)
class StaticResult:
    """One candidate's value under one analyser, and the findings behind it."""

    value: float | None
    findings: list[dict] = field(default_factory=list)
    note: str | None = None  # why there is no value (another language, unparseable), or what to know about it

    def evidence(self) -> dict:
        out: dict = {"findings": self.findings[:MAX_FINDINGS_KEPT], "n_findings": len(self.findings)}
        if self.note:
            out["note"] = self.note
        return out


def batch_dir(programs: Sequence[str], suffixes: str | Sequence[str]) -> tuple[Path, list[Path]]:
    """A fresh directory with one file per program (``c000000<suffix>``), each ending in a newline so no tool
    reports a missing one; the caller removes it."""
    directory = Path(tempfile.mkdtemp(prefix="themis-static-"))
    paths = []
    for index, program in enumerate(programs):
        suffix = suffixes if isinstance(suffixes, str) else suffixes[index]
        path = directory / f"c{index:06d}{suffix}"
        path.write_text(program if program.endswith("\n") else program + "\n", encoding="utf-8")
        paths.append(path)
    return directory, paths


def highest(found: Sequence[dict], *, default: int = 1) -> float:
    """−(the most complex function's score); ``default`` for a program without any (radon's cyclomatic
    complexity starts at 1, cognitive complexity at 0)."""
    return 0.0 - max((f["complexity"] for f in found), default=default)
