"""ASGI guards that run before any body is parsed: the bearer token (401) and the body size limit (413).

They sit below routing on purpose: an unauthenticated or oversized request is refused before FastAPI reads and
validates its JSON, so neither costs more than its headers (or ``max_body_bytes``) to refuse.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from themis_rm.errors import MissingExtraError
from themis_rm.serve.errors import error_body, error_headers

try:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("starlette", "serve") from exc

OPEN_PATHS = frozenset({"/health"})  # liveness probes carry no token


async def send_error(send: Send, status: int, kind: str, message: str, retry_after_s: int = 1) -> None:
    """Answer with the server's one error shape (see :mod:`.errors`) straight from ASGI."""
    body = error_body(status, kind, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error_headers(status, retry_after_s).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """Requires ``Authorization: Bearer <api_key>`` on every path but ``/health``; the token compared in constant
    time, the scheme case-insensitively (``bearer`` and ``BEARER`` too, as RFC 9110 says)."""

    def __init__(self, app: ASGIApp, api_key: str, count_reject: Callable[[str], None]) -> None:
        self.app = app
        self._expected = api_key.encode()
        self._count_reject = count_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        scheme, _, token = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        if not hmac.compare_digest(token.strip(b" "), self._expected) or scheme.lower() != b"bearer":
            self._count_reject("unauthorized")
            await send_error(send, 401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer …)")
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuses bodies over ``max_bytes`` with 413, whether announced by Content-Length or streamed in chunks.

    The body is read here (at most ``max_bytes``) and replayed to the app, so the limit holds for chunked uploads
    that announce no length.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, count_reject: Callable[[str], None]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._count_reject = count_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left; let the app see the disconnect
                await self.app(scope, _replay([], message, receive), send)
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send, size)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)

    async def _refuse(self, send: Send, size: int) -> None:
        self._count_reject("request_too_large")
        message = f"request body of {size}+ bytes exceeds --max-body-bytes {self.max_bytes}; send fewer items per call"
        await send_error(send, 413, "request_too_large", message)


def _replay(chunks: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once (or the pending message), then defers to the real one."""
    first: list[Message] = [pending] if pending is not None else [{"type": "http.request", "body": b"".join(chunks)}]

    async def replayed() -> Message:
        if first:
            return first.pop()
        return await receive()

    return replayed
