"""The server's error types, their HTTP status (401/413/422/429/503/500) and the one error body.

No web framework is needed here, so the request splitting the integrations reuse imports without the serve extra;
:mod:`.handlers` installs these on the app.

Every error answer has the same shape, ``{"error": {"message", "type", "param", "code"}}`` (the OpenAI/vLLM
layout), so clients parse one format whatever went wrong; ``param`` names the offending field when there is one.
"""

from __future__ import annotations

import json

from themis_rm.errors import PromptPackError, ThemisError, ThemisInputError


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
