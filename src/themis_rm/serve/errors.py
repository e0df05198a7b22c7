"""The server's error types and the one place that maps them to HTTP answers (401/413/422/429/503/500).

Every error answer has the same shape, ``{"error": {"message", "type", "param", "code"}}`` (the OpenAI/vLLM
layout), so clients parse one format whatever went wrong; ``param`` names the offending field when there is one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from themis_rm.errors import MissingExtraError, PromptPackError, ThemisError, ThemisInputError
from themis_rm.serve.request_id import RejectLog, request_id

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("fastapi", "serve") from exc

logger = logging.getLogger(__name__)


class RequestFieldError(ThemisInputError):
    """A request field that parses but cannot be scored (an empty input, a prompt with no room); 422."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


class RequestTooLargeError(ThemisInputError):
    """A body over ``--max-body-bytes`` or more sequences than ``--max-items-per-request``; 413."""


class UnauthorizedError(ThemisError):
    """No or a wrong bearer token while ``--api-key`` is set; 401."""


class OverloadedError(ThemisError):
    """The wait queue is full; ``--queue-full-status`` (503 by default, or 429) with Retry-After."""


class UnavailableError(ThemisError):
    """Shutting down, or the request ran past ``--request-timeout-s``; 503 with Retry-After."""


_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (UnauthorizedError, 401, "unauthorized"),
    (RequestTooLargeError, 413, "request_too_large"),
    (ThemisInputError, 422, "invalid_request"),
    (OverloadedError, 429, "overloaded"),
    (UnavailableError, 503, "unavailable"),
    (PromptPackError, 500, "server_misconfigured"),
    (ThemisError, 500, "server_error"),
)
_RETRY_STATUSES = frozenset({429, 503})


def classify_error(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, error type) of one of our exceptions; anything else is a 500 ``server_error``."""
    for kind, status, name in _STATUS:
        if isinstance(exc, kind):
            return status, name
    return 500, "server_error"


def error_body(status: int, kind: str, message: str, param: str | None = None) -> bytes:
    """The JSON body of every error answer."""
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": status}}).encode()


def error_headers(status: int, retry_after_s: int) -> dict[str, str]:
    """Retry-After on 429/503 so RL loops back off instead of failing a step; the bearer challenge on 401."""
    if status in _RETRY_STATUSES:
        return {"Retry-After": str(retry_after_s)}
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="themis"'}
    return {}


def install_error_handlers(
    app: FastAPI, retry_after_s: int, count_reject: Callable[[str], None], queue_full_status: int = 503
) -> None:
    """Map our exceptions, FastAPI's validation errors and Starlette's HTTP errors to the one error shape.

    ``count_reject(reason)`` is called once per rejected request, so every 4xx/5xx lands in ``/metrics``; a full
    queue answers ``queue_full_status``.
    """

    log_reject = RejectLog()

    def answer(status: int, kind: str, message: str, param: str | None = None, request=None) -> JSONResponse:
        count_reject(kind)
        if request is not None and 400 <= status < 500:
            log_reject(request.method, request.url.path, status, kind, message, request_id(request.scope))
        return JSONResponse(
            json.loads(error_body(status, kind, message, param)),
            status_code=status,
            headers=error_headers(status, retry_after_s),
        )

    async def on_themis_error(request: Request, exc: Exception) -> JSONResponse:
        status, kind = classify_error(exc)
        if isinstance(exc, OverloadedError):
            status = queue_full_status
        if status >= 500 and kind != "overloaded":
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return answer(status, kind, str(exc), getattr(exc, "param", None), request)

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe_validation(exc.errors())
        return answer(422, "invalid_request", message, param, request)

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return answer(exc.status_code, "http_error", str(exc.detail), request=request)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
        return answer(500, "server_error", f"internal error ({type(exc).__name__}); see the server log")

    app.add_exception_handler(ThemisError, on_themis_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def describe_validation(errors: list[dict]) -> tuple[str, str | None]:
    """One message naming every bad field (``items[2].response: Input should be a valid string``) and the first.

    A body that is not JSON at all is reported as such, with the parser's reason and position.
    """
    parts, params = [], []
    for error in errors:
        param = _field_path(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "malformed JSON")
            where = error["loc"][-1] if isinstance(error.get("loc", [None])[-1], int) else "?"
            parts.append(f"the request body is not valid JSON ({reason} at character {where})")
            params.append("body")
            continue
        parts.append(f"{param}: {error.get('msg', 'invalid value')}")
        params.append(param)
    return "; ".join(parts) or "invalid request", (params[0] if params else None)


def _field_path(loc: tuple | list) -> str:
    """``("body", "items", 2, "response")`` -> ``items[2].response``; the bare body is ``body``."""
    path = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"
