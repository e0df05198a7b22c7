"""Routes of vLLM's pooling API (:mod:`.vllm_protocol`): what a vLLM-written client posts, answered as vLLM would.

``/v1/score`` also still takes the structured body it took in 0.1.0 (``{"items": [{...}], "criteria"}``, now
``/v1/rewards``): a body with ``items`` and no ``queries`` is that one, answered as before with a ``Deprecation``
header pointing to ``/v1/rewards``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from themis_rm.errors import MissingExtraError
from themis_rm.pairs import ScoreRequest as ConversationRequest
from themis_rm.serve.dependencies import Service
from themis_rm.serve.protocol import ScoreItemsRequest, ScoreItemsResponse
from themis_rm.serve.request_id import request_id
from themis_rm.serve.service import RewardService, Scored
from themis_rm.serve.vllm_protocol import (
    ClassifyRequest,
    ClassifyResponse,
    ModelCard,
    ModelList,
    PoolingRequest,
    PoolingResponse,
    RerankRequest,
    RerankResponse,
    ScoreRequest,
    ScoreResponse,
)

try:
    from fastapi import APIRouter, Body, Request, Response
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("fastapi", "serve") from exc


router = APIRouter()
_STARTED = int(time.time())


async def _classified(body: ClassifyRequest, service: RewardService) -> Scored:
    """Rewards of a classify/pooling request: ``input`` scored as sent, ``messages`` rendered here."""
    if body.messages is not None:
        prompt, response = body.conversation()
        return await _conversations(service, [prompt], [response])
    return await service.classify(body.input, body.special_tokens, body.max_tokens)


async def _conversations(service: RewardService, prompts: list, responses: list[str]) -> Scored:
    scored = await service.score_items(
        [ConversationRequest(p, r) for p, r in zip(prompts, responses, strict=True)], None
    )
    return Scored(scored.rewards[:, 0].tolist(), scored.truncated_tokens, scored.tokens)


@router.post("/classify")
async def classify(body: ClassifyRequest, service: Service, request: Request) -> ClassifyResponse:
    """vLLM classify (what verl's reward loop posts): ``probs[0]`` is sigmoid(reward), or the raw reward with
    ``use_activation: false`` (what verl sends); for ``input`` the tokenizer's BOS is added unless
    ``add_special_tokens: false``."""
    scored = await _classified(body, service)
    return ClassifyResponse.of(service.settings.model_name, scored, body.sigmoid(), request_id(request.scope))


@router.post("/pooling")
async def pooling(body: PoolingRequest, service: Service, request: Request) -> PoolingResponse:
    """vLLM pooling on a reward model: ``data[i].data == [sigmoid(reward)]`` (``[reward]`` with
    ``use_activation: false``), as vLLM pools a one-label classifier."""
    scored = await _classified(body, service)
    return PoolingResponse.of(service.settings.model_name, scored, body.sigmoid(), request_id(request.scope))


@router.post("/score")
@router.post("/v1/score")
async def score(
    request: Request, response: Response, service: Service, body: Annotated[dict[str, Any], Body()]
) -> ScoreResponse | ScoreItemsResponse:
    """vLLM score: each (query, document) pair as (prompt, response); the sigmoid unless ``use_activation: false``."""
    if request.url.path == "/v1/score" and "items" in body and "queries" not in body:
        response.headers["Deprecation"] = "true"
        response.headers["Link"] = '</v1/rewards>; rel="successor-version"'
        items = _validated(ScoreItemsRequest, body)
        scored = await service.score_items([item.to_request() for item in items.items], items.criteria)
        return ScoreItemsResponse.of(service.settings.model_name, scored)
    pairs = _validated(ScoreRequest, body)
    scored = await _conversations(service, *pairs.pairs())
    return ScoreResponse.of(service.settings.model_name, scored, pairs.sigmoid(), request_id(request.scope))


@router.post("/rerank")
@router.post("/v1/rerank")
@router.post("/v2/rerank")
async def rerank(body: RerankRequest, service: Service, request: Request) -> RerankResponse:
    """vLLM rerank: the documents (candidate responses to ``query``) by reward, best first."""
    scored = await _conversations(service, [body.query] * len(body.documents), list(body.documents))
    return RerankResponse.of(service.settings.model_name, body, scored, request_id(request.scope))


@router.get("/v1/models")
async def models(service: Service) -> ModelList:
    """The one model served, in OpenAI/vLLM's model-list layout."""
    settings = service.settings
    card = ModelCard(id=settings.model_name, created=_STARTED, root=settings.model, max_model_len=settings.max_length)
    return ModelList(data=[card])


def _validated(schema, body: dict[str, Any]):
    """``body`` parsed into ``schema``; a bad one answers the usual 422 naming the field."""
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
