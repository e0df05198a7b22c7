"""The FastAPI app: thin routes over one :class:`RewardService`, built once by :func:`create_app`.

Endpoints: ``POST /get_reward`` (OpenRLHF), ``POST /v1/rewards`` (structured, several criteria per call), vLLM's
pooling API (``/classify`` as verl calls it, ``/score``, ``/rerank``, ``/pooling``, ``GET /v1/models``; in
:mod:`.vllm_routes`), ``POST /v1/group_rewards`` with ``--reward-spec`` (composite rewards of a GRPO group; in
:mod:`.group_rewards`), ``GET /health``, ``GET /metrics`` (Prometheus). Requests pass, outermost
first: request id -> metrics -> bearer token (401) -> body limit (413) -> cancel on disconnect -> routing and
JSON validation (422) -> the service (413 too many items or tokens, 503 (or 429) queue full, 503 shutting down or
timed out). Nothing from a request is ever executed in this process: templates are the reward model's own, policy
strings are only split on plain-string markers, and /v1/group_rewards runs candidates in sandboxed processes only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from themis_rm.config import validate_config
from themis_rm.errors import MissingExtraError
from themis_rm.serve import vllm_routes
from themis_rm.serve.dependencies import Service
from themis_rm.serve.disconnect import CancelOnDisconnect
from themis_rm.serve.guards import BearerAuth, BodyLimit
from themis_rm.serve.handlers import install_error_handlers
from themis_rm.serve.metrics import MetricsMiddleware
from themis_rm.serve.protocol import (
    GetRewardRequest,
    GetRewardResponse,
    ScoreItemsRequest,
    ScoreItemsResponse,
)
from themis_rm.serve.request_id import RequestIdMiddleware
from themis_rm.serve.service import RewardService
from themis_rm.serve.settings import ServeSettings

try:
    from fastapi import APIRouter, FastAPI
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("fastapi", "serve") from exc


def create_app(settings: ServeSettings, service: RewardService | None = None) -> FastAPI:
    """Build the app around ``service`` (default: load the model named by ``settings`` now, before serving).

    The service's threads and batcher start with the app (lifespan startup) and drain on shutdown, after uvicorn
    has stopped accepting connections and its in-flight requests have been answered. ``settings`` built in Python
    are validated here, as :func:`.settings.load_settings` validates those from flags, YAML and the environment.
    """
    validate_config(settings)
    spec = None
    if settings.reward_spec is not None:  # a bad spec fails before the model loads
        from themis_rm.serve import group_rewards

        spec = group_rewards.load_spec(settings)
    service = service or RewardService.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="themis-rm reward server", lifespan=lifespan)
    app.state.service = service
    install_error_handlers(app, settings.retry_after_s, service.metrics.reject, settings.queue_full_status)
    app.include_router(router)
    app.include_router(vllm_routes.router)
    if spec is not None:
        app.state.composite = group_rewards.build_composite(spec, service)
        app.include_router(group_rewards.router)
    app.add_middleware(CancelOnDisconnect, on_abandon=service.count_abandoned)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, count_reject=service.metrics.reject)
    if settings.api_key is not None:
        app.add_middleware(BearerAuth, api_key=settings.api_key.get_secret_value(), count_reject=service.metrics.reject)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    app.add_middleware(RequestIdMiddleware)  # outermost: 401/413 answers carry the id too
    return app


router = APIRouter()


@router.post("/get_reward")
async def get_reward(body: GetRewardRequest, service: Service) -> GetRewardResponse:
    """OpenRLHF ``--remote_rm_url``: one reward per chat-formatted query."""
    scored = await service.get_reward(body.query, body.prompts)
    return GetRewardResponse.of(scored.rewards)


@router.post("/v1/rewards")
async def rewards(body: ScoreItemsRequest, service: Service) -> ScoreItemsResponse:
    """Structured items under one or several criteria in one call."""
    scored = await service.score_items([item.to_request() for item in body.items], body.criteria)
    return ScoreItemsResponse.of(service.settings.model_name, scored)


@router.get("/health")
async def health(service: Service) -> JSONResponse:
    """200 while serving, 503 while starting or draining; with the queue depth and every counter."""
    report = service.health()
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)


@router.get("/metrics")
async def metrics(service: Service) -> Response:
    """Prometheus text format."""
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
