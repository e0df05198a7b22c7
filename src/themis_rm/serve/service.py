"""``RewardService``: what the HTTP routes call. Renders on one thread, scores on another, batched.

The service adds no scoring logic: structured items go through the scorer's own renderer (criteria -> system
prompt -> chat template -> ids) and engines, exactly as ``themis score`` does. Two things are server-specific:

* raw strings (``/classify``, ``/get_reward`` without ``--rerender``) are tokenised as sent (``/get_reward``
  without special tokens, as OpenRLHF renders them whole; ``/classify`` with the BOS added once, as vLLM does for
  verl, which strips it), and when too long keep their END, where the reward is read;
* ``/get_reward --rerender`` splits policy strings into turns and response (:mod:`.queries`), then renders them
  like any structured item under the server's ``--criteria``.

Threads: the event loop only parses, admits and answers; rendering and tokenisation run in chunks on the render
worker's one thread (:mod:`.render_worker`: a 12 MiB request cannot freeze ``/health``, and a client that leaves
stops its request between chunks), the model on the batcher's one "model" thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from themis_rm.conversation import SystemOnlyConversationError, criterion_requests
from themis_rm.errors import CriteriaError, PromptTooLongError
from themis_rm.packs import resolve_pack
from themis_rm.pairs import ScoreRequest, prompt_chars
from themis_rm.render import RenderedSequence
from themis_rm.scoring.scorer import Scorer
from themis_rm.serve.batcher import BatchLimits, MicroBatcher
from themis_rm.serve.errors import RequestFieldError, RequestTooLargeError, UnavailableError
from themis_rm.serve.metrics import ServeMetrics
from themis_rm.serve.queries import QuerySplitter
from themis_rm.serve.render_worker import RenderChunk, RenderWorker, T
from themis_rm.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """Rewards of one request's sequences (request order), how many tokens each lost, and tokens scored."""

    rewards: list[float]
    truncated_tokens: list[int]
    tokens: int


@dataclass(frozen=True)
class CriteriaScored:
    """``rewards[i][j]``: item ``i`` under criteria ``labels[j]``; truncation is the most any criterion cut."""

    labels: list[str]
    rewards: np.ndarray  # (items, criteria), float64
    truncated_tokens: list[int]
    tokens: int
    replaced_system: list[bool]  # the item's own system turn gave way to the criterion prompt


class RewardService:
    """One scorer, one batcher, the request limits; built once per process by :func:`create_app`.

    Args:
        scorer: the loaded reward model.
        settings: limits, batching and ``/get_reward`` options.
        metrics: where counters go (a fresh registry by default).
        before_batch: called on the model thread before each batch; a test hook to make the model slow.
        before_render: called on the render thread before each chunk; a test hook to make rendering slow.
    """

    def __init__(
        self,
        scorer: Scorer,
        settings: ServeSettings,
        *,
        metrics: ServeMetrics | None = None,
        before_batch: Callable[[], None] | None = None,
        before_render: Callable[[], None] | None = None,
    ) -> None:
        self.scorer = scorer
        self.settings = settings
        self.metrics = metrics or ServeMetrics()
        self.splitter = QuerySplitter(settings.assistant_marker, settings.end_markers)
        self.get_reward_system = scorer.system_prompt(settings.criteria) if settings.rerender else None
        limits = BatchLimits(
            max_batch_items=settings.max_batch_items,
            max_batch_tokens=settings.max_batch_tokens or scorer.engine.batch_tokens,
            max_wait_ms=settings.max_wait_ms,
            max_queue_items=settings.max_queue_items,
        )
        self.batcher: MicroBatcher[RenderedSequence] = MicroBatcher(
            self._score_batch, _token_count, limits, self.metrics
        )
        self.render_worker = RenderWorker(
            settings.max_request_tokens,
            settings.max_queue_items,
            observer=self.metrics,
            before_chunk=before_render,
        )
        self._before_batch = before_batch
        self._started = False
        self.counters: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: ServeSettings, **kwargs) -> RewardService:
        """Load the model (and the prompt pack when criteria are asked for) named by ``settings``."""
        needs_pack = settings.criteria.strip().lower() != "none" or settings.criteria_file is not None
        prompts = resolve_pack(settings.prompt_pack, settings.criteria_file) if needs_pack else settings.prompt_pack
        return cls(Scorer.from_job_config(settings, prompts), settings, **kwargs)

    # ------------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.render_worker.start()
        self.batcher.start()
        self._started = True
        logger.info("reward service ready: %s", self.settings.model_name)

    async def stop(self) -> None:
        """Finish queued and running batches (up to ``--shutdown-timeout-s``), then release the model thread."""
        await self.batcher.close(self.settings.shutdown_timeout_s)
        self.render_worker.close()

    # ------------------------------------------------------------------------------------------- requests
    async def get_reward(self, queries: list[str], prompts: list[str] | None) -> Scored:
        """OpenRLHF: score chat-formatted strings as sent, or split and re-render them (``--rerender``)."""
        self._check_count(len(queries), "query")
        if prompts is not None and len(prompts) != len(queries):
            raise RequestFieldError("prompts", f"has {len(prompts)} entries for {len(queries)} queries")
        if self.settings.rerender:
            with_prompts = list(zip(queries, prompts or [None] * len(queries), strict=True))
            return await self._score(with_prompts, self._render_queries, _first_chars, "query")
        render = partial(self._render_raw, add_special_tokens=False, param="query")
        return await self._score(queries, render, len, "query")

    async def classify(
        self, inputs: list[str] | list[list[int]], add_special_tokens: bool = True, max_tokens: int | None = None
    ) -> Scored:
        """vLLM-style classify: strings already rendered with the reward model's own template, or token ids."""
        self._check_count(len(inputs), "input")
        if isinstance(inputs[0], list):
            render = partial(self._render_ids, max_tokens=max_tokens)
        else:
            render = partial(
                self._render_raw, add_special_tokens=add_special_tokens, param="input", max_tokens=max_tokens
            )
        return await self._score(inputs, render, len, "input")

    async def score_items(self, requests: list[ScoreRequest], criteria: list[str] | None) -> CriteriaScored:
        """Score every item under each criteria spec (``["security", "runtime"]`` gives two scores per item)."""
        specs = criteria or [self.settings.criteria]
        self._check_count(len(requests) * len(specs), "items")
        labels, under, replaced = self._criteria_requests(requests, specs)
        render = partial(self._render_requests, param="items", modulo=len(requests))
        scored = await self._score(under, render, _request_chars, "items")
        rewards = np.asarray(scored.rewards).reshape(len(specs), len(requests)).T
        truncated = np.asarray(scored.truncated_tokens).reshape(len(specs), len(requests)).max(axis=0)
        return CriteriaScored(labels, rewards, truncated.tolist(), scored.tokens, replaced)

    def count_abandoned(self) -> None:
        """A request was cancelled because its client left (:mod:`.disconnect`)."""
        self.counters["abandoned_requests"] += 1

    def health(self) -> dict:
        """Readiness, queue and every counter (batcher drops, service counters, engine work)."""
        return {
            "status": "ok" if self.batcher.running else "unavailable",
            "model": self.settings.model_name,
            "get_reward": {"rerender": self.settings.rerender, "criteria": self.settings.criteria},
            "rendering_items": self.render_worker.pending_items,
            "queue_items": self.batcher.queued,
            "counters": {**self.batcher.counters, **self.render_worker.counters, **self.counters},
            "engine": self.scorer.work_counters(),
        }

    # -------------------------------------------------------------------------------------------- pipeline
    async def _score(
        self, items: Sequence[T], render_chunk: RenderChunk, size_of: Callable[[T], int], param: str
    ) -> Scored:
        """Render ``items`` on the render worker, then wait for the batcher to score them, within the request
        timeout (a request cancelled meanwhile, by its client leaving or the timeout, stops where it is)."""
        if not self._started:
            raise UnavailableError("the reward service is not started yet")
        try:
            async with asyncio.timeout(self.settings.request_timeout_s):
                rendered = await self.render_worker.render(items, render_chunk, size_of, param)
                rewards = await self.batcher.submit(rendered)
        except TimeoutError:
            self.counters["timed_out_requests"] += 1
            raise UnavailableError(
                f"not scored within --request-timeout-s {self.settings.request_timeout_s:g}; the server is busy"
            ) from None
        truncated = [r.truncated_tokens for r in rendered]
        self.metrics.truncated.inc(sum(1 for t in truncated if t))
        return Scored(rewards, truncated, sum(len(r.input_ids) for r in rendered))

    def _score_batch(self, rendered: list[RenderedSequence]) -> np.ndarray:
        if self._before_batch is not None:
            self._before_batch()
        return self.scorer.score_rendered(rendered)

    def _check_count(self, count: int, param: str) -> None:
        if count == 0:
            raise RequestFieldError(param, "is empty; send at least one item")
        if count > self.settings.max_items_per_request:
            self.counters["rejected_too_many_items"] += 1
            raise RequestTooLargeError(
                f"{param}: {count} sequences exceed --max-items-per-request {self.settings.max_items_per_request}; "
                "split the call"
            )

    # --------------------------------------------------------------- rendering (the render worker's thread)
    # Each takes one chunk of a request's items and the request index of its first item (``offset``), so errors
    # name the item the client sent.
    def _render_raw(
        self,
        texts: Sequence[str],
        offset: int,
        add_special_tokens: bool,
        param: str,
        max_tokens: int | None = None,
    ) -> list[RenderedSequence]:
        """Already-formatted strings as the scorer tokenises them (their end kept within its budget)."""
        return self._checked(self.scorer.render_formatted(texts, add_special_tokens, max_tokens), param, offset)

    def _render_ids(self, ids: Sequence[list[int]], offset: int, max_tokens: int | None) -> list[RenderedSequence]:
        return self._checked(self.scorer.render_token_ids(ids, max_tokens, first_index=offset), "input", offset)

    @staticmethod
    def _checked(sequences: list[RenderedSequence], param: str, offset: int) -> list[RenderedSequence]:
        for i, sequence in enumerate(sequences):
            if not sequence.input_ids:
                raise RequestFieldError(f"{param}[{offset + i}]", "is empty (nothing to score)")
        return sequences

    def _render_queries(self, queries: Sequence[tuple[str, str | None]], offset: int) -> list[RenderedSequence]:
        splits = [self.splitter.split(q, p, f"query[{offset + i}]") for i, (q, p) in enumerate(queries)]
        requests, replaced = criterion_requests(
            [s.turns for s in splits], [s.response for s in splits], self.get_reward_system
        )  # never system-only: the splitter requires a user turn
        self.counters["policy_system_turns_replaced"] += sum(replaced)
        return self._render_requests(requests, offset, "query")

    def _render_requests(
        self, requests: Sequence[ScoreRequest], offset: int, param: str, modulo: int = 0
    ) -> list[RenderedSequence]:
        try:
            return self.scorer.renderer.render_many(requests)
        except PromptTooLongError as exc:
            index = offset + exc.index
            raise RequestFieldError(
                f"{param}[{index % modulo if modulo else index}]", str(exc).split(": ", 1)[-1]
            ) from exc

    # ------------------------------------------------------------------------------ criteria (event loop)
    def _criteria_requests(
        self, requests: Sequence[ScoreRequest], specs: Sequence[str]
    ) -> tuple[list[str], list[ScoreRequest], list[bool]]:
        """Every item under every spec, spec-major; each spec's canonical label; which items had their system
        turn replaced by a criterion prompt (:mod:`themis_rm.conversation`'s rule)."""
        labels: list[str] = []
        all_requests = []
        replaced = [False] * len(requests)
        prompts, responses = [r.prompt for r in requests], [r.response for r in requests]
        for j, spec in enumerate(specs):
            label, system = self._resolve(spec, f"criteria[{j}]")
            if label in labels:
                raise RequestFieldError(f"criteria[{j}]", f"repeats {label} (asked for twice)")
            labels.append(label)
            try:
                under, replaced_here = criterion_requests(prompts, responses, system)
            except SystemOnlyConversationError as exc:
                raise RequestFieldError(
                    f"items[{exc.index}].messages", f"has only system turns; {label} replace them"
                ) from exc
            all_requests += under
            replaced = [a or b for a, b in zip(replaced, replaced_here, strict=True)]
        self.counters["policy_system_turns_replaced"] += sum(replaced)
        return labels, all_requests, replaced

    def _resolve(self, spec: str, param: str) -> tuple[str, str | None]:
        try:
            selection = self.scorer.selection(spec)
        except CriteriaError as exc:
            raise RequestFieldError(param, str(exc)) from exc
        if not selection:
            return "none", None
        return self.scorer.prompts.selection_label(selection), self.scorer.prompts.eval_prompt(selection)


def _first_chars(query_and_prompt: tuple[str, str | None]) -> int:
    return len(query_and_prompt[0])


def _request_chars(request: ScoreRequest) -> int:
    """Characters of one item, for the render worker's chunking."""
    return prompt_chars(request.prompt) + len(request.response) + len(request.system or "")


def _token_count(sequence: RenderedSequence) -> int:
    """What one sequence adds to a gathered batch: its tokens past the system block.

    The prefix engine computes a criteria system block once per batch (and keeps it across batches), so charging
    it to every request would cap a batch under a 1,100-token Themis prompt at a handful of requests. Memory stays
    bounded: the engines re-batch whatever they are given to their own ``--batch-tokens`` budget.
    """
    return len(sequence.input_ids) - sequence.system_len
