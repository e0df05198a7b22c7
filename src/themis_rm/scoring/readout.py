"""What every adapter shares: specs read from JSON with every problem named, and where and which token is read.

A spec's keys are checked against its dataclass fields (an unknown key names the valid ones), and each dataclass
validates its own values and reports all problems at once; :func:`pool_positions` and :func:`single_token_id`
locate the position and the token a reward is read at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import TypeVar

import torch

from themis_rm.errors import ThemisInputError

_Spec = TypeVar("_Spec")


def read_spec(spec: _Spec | Mapping | str | os.PathLike | None, kind: type[_Spec]) -> _Spec:
    """A spec given as an instance, a dict, or a JSON file path (``None``: the defaults)."""
    if spec is None:
        return kind()
    if isinstance(spec, kind):
        return spec
    if isinstance(spec, Mapping):
        return kind.from_dict(spec)
    if isinstance(spec, str | os.PathLike):
        path = Path(spec)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ThemisInputError(f"--adapter-spec {path}: cannot read a JSON object ({exc})") from exc
        if not isinstance(data, Mapping):
            raise ThemisInputError(f"--adapter-spec {path}: expected a JSON object, got {type(data).__name__}")
        return kind.from_dict(data, source=str(path))
    raise ThemisInputError(f"--adapter-spec must be a {kind.__name__}, a dict or a JSON path, got {type(spec)}")


def build_spec(kind: type[_Spec], data: dict, source: str) -> _Spec:
    """``kind(**data)`` after checking the keys; a validation error is prefixed with ``source``."""
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ThemisInputError(f"{source}: unknown key(s) {unknown}; valid keys are {', '.join(sorted(known))}")
    required = [f.name for f in fields(kind) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise ThemisInputError(f"{source}: missing key(s) {missing}")
    try:
        return kind(**data)
    except ThemisInputError as exc:
        message = str(exc)
        raise ThemisInputError(message if message.startswith(f"{source}:") else f"{source}: {message}") from exc


def raise_problems(where: str, problems: list[str]) -> None:
    """One error listing every problem found (validate in one place, raise once)."""
    if problems:
        raise ThemisInputError(f"{where}: " + "; ".join(problems))


def pool_positions(
    attention_mask: torch.Tensor, input_ids: torch.Tensor | None = None, token_id: int | None = None
) -> torch.Tensor:
    """Per row, the last real position (``token_id`` None) or the last real occurrence of ``token_id``.

    Read from the mask, not from ``mask.sum() - 1``, so left padding is right too. Returns ``(B,)`` int64.

    Raises:
        ThemisInputError: a row has no real token, or does not contain ``token_id``.
    """
    keep = attention_mask.bool()
    if token_id is not None:
        keep = keep & (input_ids == token_id)
    steps = torch.arange(keep.shape[1], device=keep.device)
    positions = torch.where(keep, steps, -1).max(dim=-1).values
    if bool((positions < 0).any()):
        rows = torch.nonzero(positions < 0).flatten().tolist()
        what = "no real token" if token_id is None else f"no token id {token_id} to pool at"
        raise ThemisInputError(
            f"batch rows {rows} have {what}; the head adapter reads the reward there, so every conversation "
            "must contain it (appending it after the template, as Athene does, is not supported)"
        )
    return positions


def single_token_id(tokenizer, text: str, what: str) -> int:
    """The one token id ``text`` encodes to (no special tokens added), else an error showing the split."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise ThemisInputError(
            f"{what} {text!r} must be a single token, the tokenizer splits it into {len(ids)}: {pieces}; "
            "choose a string that is one token (mind the leading space)"
        )
    return ids[0]
