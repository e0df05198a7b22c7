"""Work for a client that has gone is cancelled, not done: RL clients time out and retry, and each abandoned
request would otherwise still be tokenised and scored (20 abandoned 100-item calls cost a minute of model time).

Starlette never cancels a handler when its client disconnects, so :class:`CancelOnDisconnect` does: once the body
is read it watches the connection, and when the client leaves before the answer has started it cancels the
handler. The cancellation reaches whatever the request is waiting on: the render worker stops before the next
chunk and the batcher takes the job out of its queue (a batch already on the model runs to the end, and only its
answer is dropped), each counted under ``dropped_abandoned_*``; the request is counted in ``/metrics`` with
status 499.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from themis_rm.errors import MissingExtraError

try:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("starlette", "serve") from exc


class CancelOnDisconnect:
    """Runs each HTTP request's handler as a task and cancels it when the client disconnects before the answer.

    Args:
        app: the ASGI app to guard.
        on_abandon: called once per request cancelled this way.
    """

    def __init__(self, app: ASGIApp, on_abandon: Callable[[], None]) -> None:
        self.app = app
        self._on_abandon = on_abandon

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body: list[Message] = []
        while True:  # the body first: the next message on the connection can only be its end
            message = await receive()
            if message["type"] != "http.request":
                return  # left before sending the whole body: nothing was started, nothing to answer
            body.append(message)
            if not message.get("more_body", False):
                break
        gone = asyncio.Event()
        answering = False

        async def replay() -> Message:
            if body:
                return body.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        async def sending(message: Message) -> None:
            nonlocal answering
            answering = True
            await send(message)

        handler = asyncio.create_task(self.app(scope, replay, sending))
        watcher = asyncio.create_task(receive())
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server itself is cancelling this request
            handler.cancel()
            raise
        finally:
            watcher.cancel()
        if not handler.done():  # the connection ended first (a finished answer also ends it: then let it be)
            gone.set()
            if not answering:
                handler.cancel()
                self._on_abandon()
            await asyncio.wait({handler})
        if not handler.cancelled():
            handler.result()  # the handler's own exception, for the layers above
