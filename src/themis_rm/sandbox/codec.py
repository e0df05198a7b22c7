"""A strict value codec between the candidate and the judge: plain built-in values only, rebuilt fresh.

The candidate's return values cross a pipe as JSON with type tags and are rebuilt in the judge from scratch, so
nothing the candidate defines reaches the comparison: an ``int`` subclass whose ``__eq__`` is always true, a
``str`` with a patched ``__hash__`` or a list whose ``__bool__`` lies is refused at encoding (exact types are
checked, subclasses are not plain values) and, were the candidate to write the frame itself, the decoder builds
only ``None``/``bool``/``int``/``float``/``complex``/``str``/``bytes``/``list``/``tuple``/``dict``/``set``/
``frozenset``. Standard library only: the sandbox scripts import it with ``python -I``.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64
MAX_ITEMS = 1_000_000


class CodecError(ValueError):
    """A value that is not a plain built-in value, or a frame that does not decode to one."""


def encode(value: Any) -> Any:
    """``value`` as a JSON-ready tagged tree; raises :class:`CodecError` for anything else."""
    budget = [MAX_ITEMS]
    return _encode(value, 0, budget)


def _encode(value: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if depth > MAX_DEPTH or budget[0] < 0:
        raise CodecError("value is nested too deeply or holds too many items")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return {"int": str(value)}
    if kind is float:
        return {"float": value.hex() if math.isfinite(value) else repr(value)}
    if kind is complex:
        return {"complex": [value.real.hex(), value.imag.hex()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        items = [_encode(item, depth + 1, budget) for item in value]
        return {kind.__name__: items}
    if kind is dict:
        return {"dict": [[_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)] for k, v in value.items()]}
    raise CodecError(f"a {kind.__module__}.{kind.__qualname__} is not a plain built-in value")


_FLOAT_WORDS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def decode(tree: Any) -> Any:
    """Rebuild a value from :func:`encode`'s output, accepting nothing else."""
    return _decode(tree, 0)


def _decode(tree: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError("frame is nested too deeply")
    if tree is None or type(tree) is bool or type(tree) is str:
        return tree
    if type(tree) is not dict or len(tree) != 1:
        raise CodecError(f"unexpected frame element {type(tree).__name__}")
    ((tag, body),) = tree.items()
    try:
        if tag == "int":
            return int(_text(body))
        if tag == "float":
            return _FLOAT_WORDS[body] if body in _FLOAT_WORDS else _float(_text(body))
        if tag == "complex":
            real, imag = body
            return complex(float.fromhex(_text(real)), float.fromhex(_text(imag)))
        if tag == "bytes":
            return bytes.fromhex(_text(body))
        if tag in ("list", "tuple", "set", "frozenset"):
            items = [_decode(item, depth + 1) for item in _list(body)]
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        if tag == "dict":
            return {_decode(k, depth + 1): _decode(v, depth + 1) for k, v in _list(body)}
    except (TypeError, ValueError, KeyError) as error:
        raise CodecError(f"bad {tag} element: {error}") from error
    raise CodecError(f"unknown tag {tag!r}")


def _float(text: str) -> float:
    """Python's exact hex form, or a shortest round-trip decimal (what a JavaScript candidate sends)."""
    return float.fromhex(text) if "0x" in text else float(text)


def _text(body: Any) -> str:
    if type(body) is not str:
        raise CodecError("expected a string")
    return body


def _list(body: Any) -> list:
    if type(body) is not list:
        raise CodecError("expected a list")
    return body


def dumps(value: Any) -> bytes:
    """One frame: the JSON bytes of an already tagged message."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def loads(frame: bytes) -> Any:
    return json.loads(frame.decode("utf-8"))
