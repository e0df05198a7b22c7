"""A deterministic crash point for resume tests: die at an exact place instead of racing a timer.

A job calls :func:`crash_point` where a real kill would hurt most (after a checkpointed chunk of bench scores,
after an optimizer step). Nothing happens unless ``THEMIS_CRASH_AT`` names that point and the count has reached
the given number, so production runs pay one environment lookup per call. Tests set, e.g.::

    THEMIS_CRASH_AT=bench.pairs:8          # SIGKILL the process once 8 pairs are written
    THEMIS_CRASH_AT=train.step:5:SIGINT    # interrupt (KeyboardInterrupt) at optimizer step 5

The default signal is SIGKILL: the process dies at once, no ``finally``, no flush, as under ``kill -9``.
"""

from __future__ import annotations

import logging
import os
import signal

from themis_rm.errors import ThemisInputError

__all__ = ["CRASH_ENV", "crash_point"]

logger = logging.getLogger(__name__)

CRASH_ENV = "THEMIS_CRASH_AT"


def crash_point(name: str, count: int) -> None:
    """Send the configured signal to this process when ``THEMIS_CRASH_AT`` is ``name:N[:SIGNAL]`` and count >= N.

    ``>=`` rather than ``==``: a chunked loop may jump past N (8 pairs asked, chunks of 5 give 5, 10), and the
    crash must still happen at the first point past it.

    Raises:
        ThemisInputError: ``THEMIS_CRASH_AT`` is set but malformed (a typo must not silently disable the crash).
    """
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    target, at, signum = _parse(spec)
    if target != name or count < at:
        return
    logger.warning("%s=%s: sending %s at %s %d", CRASH_ENV, spec, signal.Signals(signum).name, name, count)
    os.kill(os.getpid(), signum)


def _parse(spec: str) -> tuple[str, int, int]:
    parts = spec.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError("expected 2 or 3 ':'-separated parts")
        signum = getattr(signal, parts[2]) if len(parts) == 3 else signal.SIGKILL
        return parts[0], int(parts[1]), int(signum)
    except (ValueError, AttributeError) as exc:
        raise ThemisInputError(
            f"{CRASH_ENV}={spec!r} is not '<point>:<count>[:<SIGNAL>]' (e.g. 'bench.pairs:8:SIGINT'): {exc}"
        ) from exc
