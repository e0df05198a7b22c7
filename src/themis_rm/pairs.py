"""Input schema and readers: preference pairs and score requests from JSONL, JSON, Parquet, CSV, HF datasets.

One valid CodeRewardBench-style row::

    {"id": "HUMANEVAL_PACK_b44039fde3b2", "prompt": "Write a function ...", "chosen": "def f(): ...",
     "rejected": "def f(): ...", "aspect": "Functional_Correctness", "language": "Python",
     "subset": "HUMANEVAL_PACK"}

``prompt`` may also be a message list (``[{"role": "user", "content": ...}]``), and ``chosen``/``rejected``
may be whole conversations ending with the assistant turn. Bad rows raise :class:`ThemisInputError` naming the
file, row and field; with ``skip_invalid=True`` they are counted and reported instead.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from themis_rm.errors import ThemisInputError

logger = logging.getLogger(__name__)

Message = dict[str, str]
Prompt = str | list[Message]


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """One response to score: ``prompt`` (text or messages), ``response``, optional ``system`` prompt."""

    prompt: Prompt
    response: str
    system: str | None = None


@dataclass(frozen=True, slots=True)
class PreferencePair:
    """A chosen/rejected pair for one prompt, with its CodeRewardBench labels."""

    id: str
    prompt: Prompt
    chosen: str
    rejected: str
    aspect: str | None = None
    language: str | None = None
    subset: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseRow:
    """A single (prompt, response) to score, for files without chosen/rejected."""

    id: str
    prompt: Prompt
    response: str
    aspect: str | None = None


@dataclass(frozen=True)
class FieldMap:
    """Names of the input columns (``--prompt-field`` and friends)."""

    id: str = "id"
    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    response: str = "response"
    aspect: str = "aspect"
    language: str = "language"
    subset: str = "subset"


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


@dataclass
class LoadedRows:
    """Rows that passed validation plus the ones skipped, in input order."""

    rows: list = field(default_factory=list)
    skipped: list[InvalidRow] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ raw records
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
        raise ThemisInputError(
            f"{path}: unsupported input format {suffix!r} (use .jsonl, .json, .parquet, .csv, .tsv)"
        )
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
        raise _RowError(InvalidRow(str(path), line, "", reason)) from exc


def _read_jsonl(path: Path, on_invalid: OnInvalid | None) -> Iterator[tuple[int, dict]]:
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                record = _parse_jsonl_line(path, line_number, raw)
            except _RowError as exc:
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
        raise _RowError(InvalidRow(str(path), line_number, "", f"not valid JSON ({exc.msg})")) from exc
    if not isinstance(record, dict):
        reason = f"expected a JSON object, got {type(record).__name__}"
        raise _RowError(InvalidRow(str(path), line_number, "", reason))
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
            raise _RowError(invalid)
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


# ------------------------------------------------------------------------------------------------- validation
class _RowValidator:
    """Field checks for one record; every failure names source, row and field."""

    def __init__(self, source: str, row: int, record: dict) -> None:
        self.source, self.row, self.record = source, row, record

    def fail(self, field_name: str, reason: str) -> ThemisInputError:
        return _RowError(InvalidRow(self.source, self.row, field_name, reason))

    def text(self, field_name: str, *, required: bool = True) -> str | None:
        """A required field must be a non-blank string; an optional one that is blank (a CSV cell) is None."""
        value = self.record.get(field_name)
        if value is None:
            if required:
                raise self.fail(field_name, "is missing")
            return None
        if not isinstance(value, str):
            raise self.fail(field_name, f"must be a string, got {type(value).__name__}")
        _check_utf8(self, field_name, value)
        if not value.strip():
            if required:
                raise self.fail(field_name, "is empty")
            return None
        return value

    def messages(self, field_name: str, value: list) -> list[Message]:
        for i, message in enumerate(value):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not isinstance(
                message.get("content"), str
            ):
                raise self.fail(field_name, f"message {i} must be an object with string 'role' and 'content'")
            _check_utf8(self, field_name, message["content"])
        return [{"role": m["role"], "content": m["content"]} for m in value]

    def prompt(self, field_name: str, *, fallback: list[Message] | None = None) -> Prompt:
        value = self.record.get(field_name)
        if value is None and fallback is not None:
            return fallback
        if isinstance(value, list):
            if not value:
                raise self.fail(field_name, "is an empty conversation")
            return self.messages(field_name, value)
        return self.text(field_name)  # type: ignore[return-value]

    def response(self, field_name: str) -> tuple[str, list[Message] | None]:
        """A response as text, or the last assistant turn of a conversation (returned with its context)."""
        value = self.record.get(field_name)
        if isinstance(value, list):
            turns = self.messages(field_name, value)
            if not turns or turns[-1]["role"] != "assistant":
                raise self.fail(field_name, "conversation must end with an assistant message")
            if not turns[-1]["content"].strip():
                raise self.fail(field_name, "is empty")
            return turns[-1]["content"], turns[:-1]
        return self.text(field_name), None  # type: ignore[return-value]

    def row_id(self, field_name: str) -> str:
        value = self.record.get(field_name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return f"row-{self.row}"
        return str(value)


class _RowError(ThemisInputError):
    def __init__(self, invalid: InvalidRow) -> None:
        super().__init__(str(invalid))
        self.invalid = invalid


def _check_utf8(validator: _RowValidator, field_name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        reason = f"is not valid UTF-8 ({exc.reason} at character {exc.start})"
        raise validator.fail(field_name, reason) from exc


def _load(
    source, parse_row: Callable[[_RowValidator], Any], skip_invalid: bool, **read_options
) -> LoadedRows:
    loaded = LoadedRows()
    on_invalid = loaded.skipped.append if skip_invalid else None
    for row, record in read_records(source, on_invalid=on_invalid, **read_options):
        try:
            loaded.rows.append(parse_row(_RowValidator(str(source), row, record)))
        except _RowError as exc:
            if not skip_invalid:
                raise
            loaded.skipped.append(exc.invalid)
    if loaded.skipped:
        first = loaded.skipped[0]
        logger.warning("skipped %d invalid rows of %s; first: %s", len(loaded.skipped), source, first)
    return loaded


def load_pairs(
    source: str | Path,
    fields: FieldMap | None = None,
    *,
    skip_invalid: bool = False,
    resolve_aspect: Callable[[str], str] | None = None,
    **read_options,
) -> LoadedRows:
    """Read and validate preference pairs.

    Args:
        resolve_aspect: maps an aspect name to its canonical criterion key and raises for unknown ones
            (e.g. a prompt pack's single-criterion lookup); None keeps aspects as given.
    """
    fields = fields or FieldMap()

    def parse(v: _RowValidator) -> PreferencePair:
        chosen, chosen_context = v.response(fields.chosen)
        rejected, rejected_context = v.response(fields.rejected)
        if chosen_context is not None and rejected_context is not None and chosen_context != rejected_context:
            raise v.fail(fields.rejected, "conversation context differs from the chosen one")
        return PreferencePair(
            id=v.row_id(fields.id),
            prompt=v.prompt(fields.prompt, fallback=chosen_context or rejected_context or None),
            chosen=chosen,
            rejected=rejected,
            aspect=_aspect(v, fields.aspect, resolve_aspect),
            language=v.text(fields.language, required=False),
            subset=v.text(fields.subset, required=False),
        )

    return _load(source, parse, skip_invalid, **read_options)


def load_responses(
    source: str | Path,
    fields: FieldMap | None = None,
    *,
    skip_invalid: bool = False,
    resolve_aspect: Callable[[str], str] | None = None,
    **read_options,
) -> LoadedRows:
    """Read and validate single responses to score (``prompt`` + ``response`` columns)."""
    fields = fields or FieldMap()

    def parse(v: _RowValidator) -> ResponseRow:
        response, context = v.response(fields.response)
        return ResponseRow(
            id=v.row_id(fields.id),
            prompt=v.prompt(fields.prompt, fallback=context or None),
            response=response,
            aspect=_aspect(v, fields.aspect, resolve_aspect),
        )

    return _load(source, parse, skip_invalid, **read_options)


def _aspect(v: _RowValidator, field_name: str, resolve: Callable[[str], str] | None) -> str | None:
    aspect = v.text(field_name, required=False)
    if aspect is None or resolve is None:
        return aspect
    try:
        return resolve(aspect)
    except ThemisInputError as exc:
        raise v.fail(field_name, f"is not a known criterion: {exc}") from exc


def input_kind(source: str | Path, fields: FieldMap | None = None, **read_options) -> str:
    """``"pairs"`` when the first record has chosen and rejected columns, else ``"responses"``."""
    fields = fields or FieldMap()
    for _, record in read_records(source, **read_options):
        return "pairs" if fields.chosen in record and fields.rejected in record else "responses"
    raise ThemisInputError(f"{source}: contains no rows")
