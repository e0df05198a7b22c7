"""Raw records from files, ``save_to_disk`` directories and hub datasets, with 1-based row numbers.

Formats: JSONL (line numbers), JSON (a list, or an object with a ``rows``/``data`` list), Parquet, CSV/TSV (a
UTF-8 byte-order mark is dropped), ``datasets`` directories (``split`` picks from a DatasetDict) and ``owner/name``
hub ids. Undecodable input raises :class:`ThemisInputError` naming file and line, or goes to ``on_invalid``.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from themis_rm.errors import ThemisInputError


@dataclass(frozen=True)
class InvalidRow:
    """Where a row failed validation and why; collected when ``skip_invalid`` is on."""

    source: str
    row: int
    field: str
    """The offending column; ``""`` when the whole row is unreadable (not JSON, not an object)."""
    reason: str

    def __str__(self) -> str:
        where = f"field {self.field!r} " if self.field else ""
        return f"{self.source}:{self.row}: {where}{self.reason}"


class InvalidRowError(ThemisInputError):
    """A row that failed validation; carries the :class:`InvalidRow` for ``skip_invalid`` reporting."""

    def __init__(self, invalid: InvalidRow) -> None:
        super().__init__(str(invalid))
        self.invalid = invalid


_FILE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".tsv")
OnInvalid = Callable[[InvalidRow], None]


def read_records(
    source: str | Path,
    *,
    split: str | None = None,
    config: str | None = None,
    on_invalid: OnInvalid | None = None,
) -> Iterator[tuple[int, dict]]:
    """Yield ``(row_number, record)`` from a file, a ``save_to_disk`` directory or a hub dataset id.

    Row numbers are 1-based lines for JSONL, 1-based rows elsewhere.

    Args:
        on_invalid: receives rows that cannot be read as an object (a JSONL line that is not JSON or not valid
            UTF-8, a JSON list item that is not an object), which are then skipped; None raises for them.
    """
    path = Path(source)
    suffix = path.suffix.lower()
    if path.is_dir():
        yield from _read_hf(_load_from_disk(path, split), str(path))
    elif path.is_file() and suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path, on_invalid)
    elif path.is_file() and suffix == ".json":
        yield from _read_json(path, on_invalid)
    elif path.is_file() and suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
    elif path.is_file() and suffix in (".csv", ".tsv"):
        yield from _read_csv(path, delimiter="\t" if suffix == ".tsv" else ",")
    elif path.exists():
        raise ThemisInputError(f"{path}: unsupported input format {suffix!r} (use .jsonl, .json, .parquet, .csv, .tsv)")
    elif _looks_like_hub_id(str(source)):
        yield from _read_hf(_load_from_hub(str(source), config, split), str(source))
    else:
        raise ThemisInputError(f"{source}: no such file, directory or dataset id")


def _looks_like_hub_id(source: str) -> bool:
    """``owner/name``: a missing relative path such as ``data/pairs.jsonl`` is not sent to the Hub."""
    if source.startswith((".", "/")) or source.lower().endswith(_FILE_SUFFIXES):
        return False
    return source.count("/") == 1


def _load_from_hub(source: str, config: str | None, split: str | None):
    import datasets

    try:
        return datasets.load_dataset(source, config, split=split or "train")
    except (OSError, ValueError) as exc:
        raise ThemisInputError(f"{source}: cannot load this dataset id from the Hub ({exc})") from exc


def _decode(path: Path, data: bytes, line_offset: int = 0) -> str:
    """UTF-8 text of ``data``; a byte-order mark at the file start (Excel's "CSV UTF-8") is dropped."""
    bom = len(codecs.BOM_UTF8) if line_offset == 0 and data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line = line_offset + data[: bom + exc.start].count(b"\n") + 1
        reason = f"invalid UTF-8 at byte {bom + exc.start} ({exc.reason})"
        raise InvalidRowError(InvalidRow(str(path), line, "", reason)) from exc


def _read_jsonl(path: Path, on_invalid: OnInvalid | None) -> Iterator[tuple[int, dict]]:
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                record = _parse_jsonl_line(path, line_number, raw)
            except InvalidRowError as exc:
                if on_invalid is None:
                    raise
                on_invalid(exc.invalid)
                continue
            if record is not None:
                yield line_number, record


def _parse_jsonl_line(path: Path, line_number: int, raw: bytes) -> dict | None:
    text = _decode(path, raw, line_number - 1).strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRowError(InvalidRow(str(path), line_number, "", f"not valid JSON ({exc.msg})")) from exc
    if not isinstance(record, dict):
        reason = f"expected a JSON object, got {type(record).__name__}"
        raise InvalidRowError(InvalidRow(str(path), line_number, "", reason))
    return record


def _read_json(path: Path, on_invalid: OnInvalid | None) -> Iterator[tuple[int, dict]]:
    try:
        data = json.loads(_decode(path, path.read_bytes()))
    except json.JSONDecodeError as exc:
        raise ThemisInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    records = data.get("rows", data.get("data")) if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise ThemisInputError(f"{path}: expected a list of objects (or an object with a 'rows' list)")
    for row, record in enumerate(records, start=1):
        if isinstance(record, dict):
            yield row, record
            continue
        invalid = InvalidRow(str(path), row, "", f"expected a JSON object, got {type(record).__name__}")
        if on_invalid is None:
            raise InvalidRowError(invalid)
        on_invalid(invalid)


def _read_csv(path: Path, delimiter: str) -> Iterator[tuple[int, dict]]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(_decode(path, path.read_bytes()), newline=""), delimiter=delimiter)
    yield from enumerate(reader, start=1)


def _load_from_disk(path: Path, split: str | None):
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise ThemisInputError(f"{path}: not a dataset saved with save_to_disk ({exc})") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split is None and len(loaded) == 1:
            split = next(iter(loaded))
        if split not in loaded:
            raise ThemisInputError(f"{path}: choose a split with --split, one of {sorted(loaded)}")
        loaded = loaded[split]
    return loaded


def _read_hf(dataset, label: str) -> Iterator[tuple[int, dict]]:
    if hasattr(dataset, "keys") and not hasattr(dataset, "column_names"):
        raise ThemisInputError(f"{label}: choose a split with --split, one of {sorted(dataset.keys())}")
    yield from enumerate(iter(dataset), start=1)
