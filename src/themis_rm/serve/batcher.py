"""Cross-request micro-batching: many clients' sequences gathered into one model call, each answered with its own.

RL loops send many small requests at once (one per rollout worker). Scoring each alone pays the per-forward
overhead once per request; the batcher instead runs everything that arrived while the model was busy as ONE batch
(continuous batching), up to an item and a token budget, through ``score_batch`` on one dedicated thread (the
model is never entered twice at once, and the event loop stays free to accept requests meanwhile). Optionally the
oldest request may hold an idle model up to ``max_wait_ms`` for others to join. Results are split back per
request, in order.

Backpressure: at most ``max_queue_items`` sequences wait; beyond that :meth:`MicroBatcher.submit` raises
:class:`OverloadedError` at once rather than letting the queue and the latency grow without end. A request whose
caller gave up (its timeout, or its client disconnected: :mod:`.disconnect`) is removed from the queue
(``dropped_abandoned_waiting``), or, when its batch is already running, its result is dropped
(``dropped_abandoned_scored``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from themis_rm.serve.errors import OverloadedError, UnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BatchObserver(Protocol):
    """Where the batcher reports its work (``/metrics``); every method must be cheap and never raise."""

    def on_queue(self, items: int) -> None: ...

    def on_batch(self, items: int, tokens: int, seconds: float) -> None: ...

    def on_drop(self, reason: str, items: int) -> None: ...


@dataclass(frozen=True)
class BatchLimits:
    """How much one gathered batch may hold, how long it may wait to fill, and how much may wait in all."""

    max_batch_items: int = 256
    max_batch_tokens: int = 16384
    max_wait_ms: float = 0.0
    max_queue_items: int = 4096


@dataclass(eq=False)
class _Job(Generic[T]):
    items: list[T]
    tokens: int
    future: asyncio.Future
    enqueued_at: float = field(default_factory=time.monotonic)


class MicroBatcher(Generic[T]):
    """Gathers items from concurrent :meth:`submit` calls into batches for ``score_batch``.

    Args:
        score_batch: items -> one float per item, in order; runs on the batcher's own single worker thread.
        size_of: tokens of one item, for the token budget.
        limits: batch and queue budgets.
        observer: receives queue depth, batch sizes and drops (e.g. the Prometheus metrics).
    """

    def __init__(
        self,
        score_batch: Callable[[list[T]], Sequence[float]],
        size_of: Callable[[T], int],
        limits: BatchLimits,
        observer: BatchObserver | None = None,
    ) -> None:
        self._score_batch = score_batch
        self._size_of = size_of
        self.limits = limits
        self._observer = observer
        self._pending: deque[_Job[T]] = deque()
        self._in_flight: list[_Job[T]] = []
        self._queued_items = 0
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self.counters: Counter[str] = Counter()

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the gathering task on the running loop and the model thread."""
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="themis-model")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="themis-batcher")

    async def close(self, timeout_s: float = 30.0) -> None:
        """Refuse new work, finish every queued and running batch (up to ``timeout_s``), then stop."""
        self._closing = True
        if self._worker is None:
            return
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._worker), timeout_s)
        except TimeoutError:
            logger.warning("batcher did not drain within %.0f s; failing %d queued items", timeout_s, self.queued)
            self._worker.cancel()
            self._fail_pending(UnavailableError("the server shut down before this request was scored"))
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._worker = None

    @property
    def queued(self) -> int:
        """Items waiting for a batch (not counting the batch being scored)."""
        return self._queued_items

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._closing

    # --------------------------------------------------------------------------------------------- submit
    async def submit(self, items: list[T]) -> list[float]:
        """Queue ``items`` as one job and wait for their scores (same order).

        Raises:
            OverloadedError: the queue cannot take ``len(items)`` more.
            UnavailableError: the batcher is not running (not started, or shutting down).
        """
        if self._worker is None or self._closing:
            self._count("rejected_closed", len(items))
            raise UnavailableError("the server is shutting down; retry on another replica or later")
        if self._queued_items and self._queued_items + len(items) > self.limits.max_queue_items:
            self._count("rejected_queue_full", len(items))
            raise OverloadedError(
                f"the scoring queue is full ({self._queued_items} of {self.limits.max_queue_items} sequences "
                "waiting); retry after the Retry-After delay"
            )
        job = _Job(items, sum(self._size_of(item) for item in items), asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._set_queued(self._queued_items + len(items))
        self._wake.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            if job in self._pending:  # the caller gave up before the job was batched
                self._pending.remove(job)
                self._set_queued(self._queued_items - len(items))
                self._count("dropped_abandoned_waiting", len(items))
            raise

    # -------------------------------------------------------------------------------------------- worker
    async def _run(self) -> None:
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            await self._fill_window()
            batch = self._take_batch()
            if batch:
                await self._execute(batch)

    async def _fill_window(self) -> None:
        """Wait until the batch budget is full or the oldest job has waited ``max_wait_ms``."""
        deadline = self._pending[0].enqueued_at + self.limits.max_wait_ms / 1000
        while not self._closing and not self._budget_full():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _budget_full(self) -> bool:
        items = tokens = 0
        for job in self._pending:
            items += len(job.items)
            tokens += job.tokens
            if items >= self.limits.max_batch_items or tokens >= self.limits.max_batch_tokens:
                return True
        return False

    def _take_batch(self) -> list[_Job[T]]:
        """Pop jobs in arrival order while they fit the budget; the first one always goes (it may be alone)."""
        batch: list[_Job[T]] = []
        items = tokens = 0
        while self._pending:
            job = self._pending[0]
            over = items + len(job.items) > self.limits.max_batch_items
            if batch and (over or tokens + job.tokens > self.limits.max_batch_tokens):
                break
            self._pending.popleft()
            items += len(job.items)
            tokens += job.tokens
            batch.append(job)
        self._set_queued(self._queued_items - items)
        return batch

    async def _execute(self, batch: list[_Job[T]]) -> None:
        """Score the batch on the model thread; if it fails, score its jobs one by one so only the bad one fails."""
        items = [item for job in batch for item in job.items]
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        self._in_flight = batch
        try:
            rewards = await loop.run_in_executor(self._executor, self._score_batch, items)
        except Exception as exc:  # isolated below, and counted
            if len(batch) == 1:
                self._count("failed_jobs", len(items))
                logger.error("scoring a batch of %d items failed: %s", len(items), exc)
                _settle(batch[0], exception=exc)
                return
            self._count("batch_retried_alone", len(batch))
            for job in batch:
                await self._execute([job])
            return
        finally:
            self._in_flight = []
        self._report_batch(len(items), sum(job.tokens for job in batch), time.perf_counter() - started)
        start = 0
        for job in batch:
            stop = start + len(job.items)
            if not _settle(job, result=[float(r) for r in rewards[start:stop]]):
                self._count("dropped_abandoned_scored", len(job.items))
            start = stop

    # ---------------------------------------------------------------------------------------- reporting
    def _fail_pending(self, exc: Exception) -> None:
        """Fail every queued job and the batch being scored (used only when draining timed out)."""
        for job in [*self._in_flight, *self._pending]:
            if _settle(job, exception=exc):
                self._count("failed_shutdown", len(job.items))
        self._pending.clear()
        self._in_flight = []
        self._set_queued(0)

    def _set_queued(self, items: int) -> None:
        self._queued_items = items
        if self._observer is not None:
            self._observer.on_queue(items)

    def _report_batch(self, items: int, tokens: int, seconds: float) -> None:
        self.counters["batches"] += 1
        self.counters["batched_items"] += items
        if self._observer is not None:
            self._observer.on_batch(items, tokens, seconds)

    def _count(self, reason: str, items: int) -> None:
        self.counters[reason] += items
        if self._observer is not None:
            self._observer.on_drop(reason, items)


def _settle(job: _Job, *, result: list[float] | None = None, exception: BaseException | None = None) -> bool:
    """Resolve a job's future unless its caller already gave up; False when nobody was waiting."""
    if job.future.done():
        return False
    if exception is not None:
        job.future.set_exception(exception)
    else:
        job.future.set_result(result)
    return True
