"""Maps our exceptions, FastAPI's validation errors and Starlette's HTTP errors to the one error answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from themis_rm.errors import MissingExtraError, ThemisError
from themis_rm.serve.errors import OverloadedError, classify_error, describe_validation, error_body, error_headers
from themis_rm.serve.request_id import RejectLog, request_id

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("fastapi", "serve") from exc

logger = logging.getLogger("themis_rm.serve.errors")


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
