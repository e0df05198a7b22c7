"""Outputs are written whole or not at all, and never over an input.

A job killed while writing must not leave a half ``results.json`` that a later reader takes for a result, and
``themis score -i pairs.jsonl -o pairs.jsonl`` must not replace the data with its scores. Every job output goes
through :func:`atomic_path` (write beside the target, then one ``os.replace``) and every job checks its outputs
against its inputs with :func:`refuse_overwrite` before it does any work.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from themis_rm.errors import ThemisInputError

__all__ = ["atomic_path", "refuse_overwrite", "write_text_atomic"]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` for the block to write; renamed onto ``path`` when the block
    succeeds, removed when it fails. The writer creates the file, so it gets the usual permissions (umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``Path.write_text`` (UTF-8), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def refuse_overwrite(outputs: Mapping[str, str | Path | None], inputs: Mapping[str, str | Path | None]) -> None:
    """Raise when an output would replace an input (the same path, or the same file under another name).

    Args:
        outputs, inputs: ``{flag: path}``; None values are skipped, and an input that is not a local file (a hub
            id) never matches.

    Raises:
        ThemisInputError: naming both flags and the path.
    """
    for out_flag, output in outputs.items():
        for in_flag, source in inputs.items():
            if output is not None and source is not None and _same_file(Path(output), Path(source)):
                raise ThemisInputError(
                    f"{out_flag} {output} is the {in_flag} file: writing it would destroy the input; "
                    "choose another output path"
                )


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
