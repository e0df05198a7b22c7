"""Length-prefixed frames on a pipe, shared by the judge and the candidate (standard library only)."""

from __future__ import annotations

import os
import select
import struct
import time

MAX_FRAME = 16 << 20
_HEADER = struct.Struct(">I")


class WireClosed(EOFError):
    """The other side closed the pipe (it exited) before a whole frame arrived."""


class WireTimeout(TimeoutError):
    """No whole frame before the deadline."""


class FrameTooLarge(ValueError):
    """A frame over :data:`MAX_FRAME`: the reader does not buffer unbounded output."""


def send(fd: int, payload: bytes) -> None:
    data = _HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def receive(fd: int, deadline: float | None = None) -> bytes:
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, deadline))
    if size > MAX_FRAME:
        raise FrameTooLarge(f"a frame of {size:,} bytes (most {MAX_FRAME:,})")
    return _read_exactly(fd, size, deadline)


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, missing = [], size
    while missing:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise WireTimeout("no answer before the deadline")
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            raise WireClosed("the other side closed the pipe")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
