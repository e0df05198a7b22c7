"""A request id on every answer (``X-Request-Id``), and the reason of every refused request in the log.

RL clients drop error bodies (OpenRLHF retries a 422 five times and trains on ``None``), so the reason must reach
the server log, with an id the client also got in a header to tie a strange reward to its request. The id is the
client's own ``X-Request-Id`` when it sends a short printable one, else a fresh one.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid

from themis_rm.errors import MissingExtraError

try:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("starlette", "serve") from exc

logger = logging.getLogger("themis_rm.serve.requests")
HEADER = b"x-request-id"
_VALID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id(scope: Scope) -> str | None:
    """The id :class:`RequestIdMiddleware` gave this request."""
    return scope.get("state", {}).get("request_id")


class RequestIdMiddleware:
    """Outermost ASGI layer: picks the id, stores it in the request state, adds it to the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER, b"")
        rid = given.decode() if _VALID.fullmatch(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (HEADER, rid.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


class RejectLog:
    """Logs refused requests at WARNING, at most ``burst`` per ``window_s`` (then one line saying how many were
    not logged), so a misbehaving client cannot flood the log."""

    def __init__(self, burst: int = 20, window_s: float = 10.0) -> None:
        self.burst, self.window_s = burst, window_s
        self._lock = threading.Lock()
        self._window_start, self._logged, self._suppressed = 0.0, 0, 0

    def __call__(self, method: str, path: str, status: int, kind: str, message: str, rid: str | None) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.window_s:
                if self._suppressed:
                    logger.warning("%d more refused requests not logged in the last %.0f s", self._suppressed,
                                   self.window_s)  # fmt: skip
                self._window_start, self._logged, self._suppressed = now, 0, 0
            if self._logged >= self.burst:
                self._suppressed += 1
                return
            self._logged += 1
        logger.warning("%s %s -> %d %s: %s (request %s)", method, path, status, kind, message, rid)
