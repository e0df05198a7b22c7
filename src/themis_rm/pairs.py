"""Input schema and validation: preference pairs and score requests, read through :mod:`themis_rm.readers`.

One valid CodeRewardBench-style row::

    {"id": "HUMANEVAL_PACK_b44039fde3b2", "prompt": "Write a function ...", "chosen": "def f(): ...",
     "rejected": "def f(): ...", "aspect": "Functional_Correctness", "language": "Python",
     "subset": "HUMANEVAL_PACK"}

``prompt`` may also be a message list (``[{"role": "user", "content": ...}]``), and ``chosen``/``rejected``
may be whole conversations ending with the assistant turn. A row without ``prompt`` but with ``input`` (what
``themis data`` writes, the training schema's name) reads that, so data output benches without renaming. Bad
rows raise :class:`ThemisInputError` naming the file, row and field; with ``skip_invalid=True`` they are counted
and reported instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from themis_rm.config import setting
from themis_rm.errors import ThemisInputError
from themis_rm.readers import InvalidRow, InvalidRowError, read_records

logger = logging.getLogger(__name__)

Message = dict[str, str]
Prompt = str | list[Message]
INPUT_FIELD = "input"
"""The prompt column's name in ``themis data`` output and the training schema; read when ``prompt`` is absent."""


SKIP_INVALID_HELP = (
    "Skip malformed rows instead of failing on the first; each one is counted and listed (file, row, field, "
    "reason) in the run's record."
)
SKIPPED_LISTED = 1000
"""Skipped rows listed by name in a run's record (all are counted)."""


def skipped_rows(skipped: Sequence[InvalidRow]) -> list[str]:
    """What a run records of its skipped rows: ``file:row: field 'x' reason``, the first :data:`SKIPPED_LISTED`."""
    return [str(invalid) for invalid in skipped[:SKIPPED_LISTED]]


def check_unique_ids(rows: Sequence, source: str | Path) -> None:
    """Pairs are keyed by id (bench resume, scores.parquet, joining score outputs): a repeated id is refused,
    naming the first ones repeated.

    Raises:
        ThemisInputError: some id appears twice.
    """
    seen: set[str] = set()
    repeated = [row.id for row in rows if row.id in seen or seen.add(row.id)]
    if repeated:
        raise ThemisInputError(
            f"{source}: pair ids must be unique ({len(repeated)} repeated; first: {repeated[:5]}); give each pair "
            "its own id"
        )


def is_blank(text: str) -> bool:
    """The one rule of every surface (files, ``/v1/rewards``, vLLM's ``/score``, ``/rerank``, chat ``/classify``):
    a prompt or response of nothing but whitespace has nothing to score, and is refused naming its field."""
    return not text.strip()


def prompt_chars(prompt: Prompt) -> int:
    """Characters of a prompt's text (every turn's content for a conversation)."""
    return len(prompt) if isinstance(prompt, str) else sum(len(m["content"]) for m in prompt)


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
    """Names of the input columns (``--prompt-field`` and friends): read any dataset without renaming it."""

    id: str = setting("id", "Column of each row's id.")
    prompt: str = setting("prompt", "Column of the prompt (a string, or a list of chat messages).")
    chosen: str = setting("chosen", "Column of the preferred response.")
    rejected: str = setting("rejected", "Column of the dispreferred response.")
    response: str = setting("response", "Column of the response, in files of single responses.")
    aspect: str = setting("aspect", "Column of the pair's criterion (CodeRewardBench's 'aspect').")
    language: str = setting("language", "Column of the programming language.")
    subset: str = setting("subset", "Column of the source subset.")


@dataclass
class LoadedRows:
    """Rows that passed validation plus the ones skipped, in input order."""

    rows: list = field(default_factory=list)
    skipped: list[InvalidRow] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------- validation
class RowValidator:
    """Field checks for one record; every failure names source, row and field."""

    def __init__(self, source: str, row: int, record: dict) -> None:
        self.source, self.row, self.record = source, row, record

    def fail(self, field_name: str, reason: str) -> ThemisInputError:
        return InvalidRowError(InvalidRow(self.source, self.row, field_name, reason))

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
        if is_blank(value):
            if required:
                raise self.fail(field_name, "is empty")
            return None
        return value

    def messages(self, field_name: str, value: list) -> list[Message]:
        for i, message in enumerate(value):
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("role"), str)
                or not isinstance(message.get("content"), str)
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
            if is_blank(turns[-1]["content"]):
                raise self.fail(field_name, "is empty")
            return turns[-1]["content"], turns[:-1]
        return self.text(field_name), None  # type: ignore[return-value]

    def column(self, field_name: str, alias: str) -> str:
        """``alias`` when the row has no ``field_name`` but has ``alias``, else ``field_name`` (named in errors)."""
        if self.record.get(field_name) is None and self.record.get(alias) is not None:
            return alias
        return field_name

    def row_id(self, field_name: str) -> str:
        value = self.record.get(field_name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return f"row-{self.row}"
        return str(value)


def _check_utf8(validator: RowValidator, field_name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        reason = f"is not valid UTF-8 ({exc.reason} at character {exc.start})"
        raise validator.fail(field_name, reason) from exc


def load_rows(source, parse_row: Callable[[RowValidator], Any], skip_invalid: bool, **read_options) -> LoadedRows:
    loaded = LoadedRows()
    on_invalid = loaded.skipped.append if skip_invalid else None
    for row, record in read_records(source, on_invalid=on_invalid, **read_options):
        try:
            loaded.rows.append(parse_row(RowValidator(str(source), row, record)))
        except InvalidRowError as exc:
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
    aspect_required_by: str | None = None,
    **read_options,
) -> LoadedRows:
    """Read and validate preference pairs.

    Args:
        resolve_aspect: maps an aspect name to its canonical criterion key and raises for unknown ones
            (e.g. a prompt pack's single-criterion lookup); None keeps aspects as given.
        aspect_required_by: the option that needs every row's aspect and how to do without it (e.g.
            ``"--criterion aspect needs ...; use --criterion full/none or add the field"``); a row without
            an aspect then fails with it, instead of being scored silently with no criterion. None: optional.
    """
    fields = fields or FieldMap()

    def parse(v: RowValidator) -> PreferencePair:
        chosen, chosen_context = v.response(fields.chosen)
        rejected, rejected_context = v.response(fields.rejected)
        if chosen_context is not None and rejected_context is not None and chosen_context != rejected_context:
            raise v.fail(fields.rejected, "conversation context differs from the chosen one")
        return PreferencePair(
            id=v.row_id(fields.id),
            prompt=v.prompt(v.column(fields.prompt, INPUT_FIELD), fallback=chosen_context or rejected_context or None),
            chosen=chosen,
            rejected=rejected,
            aspect=_aspect(v, fields, resolve_aspect, aspect_required_by),
            language=v.text(fields.language, required=False),
            subset=v.text(fields.subset, required=False),
        )

    return load_rows(source, parse, skip_invalid, **read_options)


def load_responses(
    source: str | Path,
    fields: FieldMap | None = None,
    *,
    skip_invalid: bool = False,
    resolve_aspect: Callable[[str], str] | None = None,
    aspect_required_by: str | None = None,
    **read_options,
) -> LoadedRows:
    """Read and validate single responses (``prompt`` + ``response`` columns); options as in :func:`load_pairs`."""
    fields = fields or FieldMap()

    def parse(v: RowValidator) -> ResponseRow:
        response, context = v.response(fields.response)
        return ResponseRow(
            id=v.row_id(fields.id),
            prompt=v.prompt(fields.prompt, fallback=context or None),
            response=response,
            aspect=_aspect(v, fields, resolve_aspect, aspect_required_by),
        )

    return load_rows(source, parse, skip_invalid, **read_options)


def _aspect(
    v: RowValidator, fields: FieldMap, resolve: Callable[[str], str] | None, required_by: str | None
) -> str | None:
    field_name = fields.aspect
    aspect = v.text(field_name, required=False)
    if aspect is None and required_by:
        raise v.fail(field_name, f"is missing (id {v.row_id(fields.id)!r}); {required_by}")
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
