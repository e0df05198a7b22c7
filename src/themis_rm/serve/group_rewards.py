"""``POST /v1/group_rewards`` (with ``--reward-spec``): the composite reward of one GRPO group per call.

The body is one group in ``themis reward``'s row schema (``prompt``, ``completions``, and ``tests`` +
``entry_point`` or ``io_cases``; optional ``id``, ``language``, ``test_preamble``, ``reference``), checked by the same
rules; the answer is that row's output record (``rewards``, ``components``, ``raw``, ``gated_by``, ``evidence``,
``executions``). The rm components are scored through the server's batcher like any other request; tests, static
analysis and measurement then run off the event loop, candidate code only ever in sandboxed processes, with at
most ``execution.workers`` runs at once over all requests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from themis_rm.errors import MissingExtraError
from themis_rm.pairs import RowValidator, ScoreRequest
from themis_rm.readers import InvalidRowError
from themis_rm.reward.composite import CompositeReward
from themis_rm.reward.groups import RewardGroup, parse_group
from themis_rm.reward.spec import RewardSpec, load_reward_spec
from themis_rm.serve.dependencies import Service
from themis_rm.serve.errors import RequestFieldError
from themis_rm.serve.service import RewardService
from themis_rm.serve.settings import ServeSettings

try:
    from fastapi import APIRouter, Body, Request
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("fastapi", "serve") from exc

logger = logging.getLogger(__name__)
router = APIRouter()


def load_spec(settings: ServeSettings) -> RewardSpec:
    """The ``--reward-spec``, checked before the model loads; its rm components use the served model."""
    spec = load_reward_spec(settings.reward_spec, model=settings.model)
    if spec.rm.model != settings.model:
        logger.warning("--reward-spec names rm.model %s; its rm components use the served model", spec.rm.model)
    return spec


def build_composite(spec: RewardSpec, service: RewardService) -> CompositeReward:
    """The composite reward around the served model; a missing analyser fails start-up."""
    from themis_rm.sandbox import isolation
    from themis_rm.sandbox.toolchains import describe_available

    composite = CompositeReward(spec, scorer=service.scorer)
    logger.info("%s; %s", isolation().describe(), describe_available())
    return composite


@router.post("/v1/group_rewards")
async def group_rewards(request: Request, service: Service, body: Annotated[dict, Body()]) -> dict:
    """One group's composite rewards: the scalars, each component as a vector, and the evidence."""
    composite: CompositeReward = request.app.state.composite
    group = _group(body)
    rm = {}
    components = composite.spec.of_kind("rm")
    if components:
        requests = [ScoreRequest(group.prompt, completion) for completion in group.completions]
        scored = await service.score_items(requests, [c.criteria or "none" for c in components])
        rm = {c.label: scored.rewards[:, j].tolist() for j, c in enumerate(components)}
    (result,) = await asyncio.to_thread(composite.score_with, [group], rm)
    return {"model": service.settings.model_name, **result.to_record()}


def _group(body: dict) -> RewardGroup:
    """The body as a group, by the same rules as a row of ``themis reward``; a bad field is a 422 naming it."""
    try:
        return parse_group(RowValidator("request", 0, {"id": "group", **body}))
    except InvalidRowError as error:
        raise RequestFieldError(error.invalid.field, error.invalid.reason) from None
