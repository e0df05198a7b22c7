"""The one FastAPI dependency every route takes: the app's :class:`RewardService`."""

from __future__ import annotations

from typing import Annotated

from themis_rm.errors import MissingExtraError
from themis_rm.serve.service import RewardService

try:
    from fastapi import Depends, Request
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("fastapi", "serve") from exc


async def _service(request: Request) -> RewardService:
    return request.app.state.service


Service = Annotated[RewardService, Depends(_service)]
