"""``RenderWorker``: rendering and tokenisation off the event loop, on one thread, one chunk at a time.

Tokenising a 12 MiB request takes seconds; on the event loop it froze every other request, ``/health`` included.
Here a request's items are rendered in chunks (at most ``chunk_items`` items or ``chunk_chars`` characters each),
each chunk one job on the worker's single thread, so

* the event loop never tokenises: ``/health`` and small requests answer while a large one is tokenised;
* one thread ever enters the tokenizer (HF fast tokenizers are not safe to share between threads);
* other requests' chunks interleave with a large request's instead of waiting behind all of it;
* a request stops between chunks when its client leaves (the awaiting coroutine is cancelled) or when its
  tokens pass ``max_request_tokens``, so neither costs more than one more chunk of work.

Admission is bounded too: at most ``max_pending_items`` items wait to be rendered; beyond that a request gets
:class:`~themis_rm.serve.errors.OverloadedError` at once, as a full scoring queue answers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from themis_rm.render import RenderedSequence
from themis_rm.serve.batcher import BatchObserver
from themis_rm.serve.errors import OverloadedError, RequestTooLargeError, UnavailableError

T = TypeVar("T")
RenderChunk = Callable[[Sequence[T], int], list[RenderedSequence]]
"""``(items, offset) -> sequences``: renders ``items``, the ones at ``offset`` onwards of the request (for naming
an item in errors by its request index)."""


class RenderWorker:
    """One rendering thread shared by every request, with per-request token and global pending-item caps.

    Args:
        max_request_tokens: most tokens one request may bring to the model (after truncation), in all.
        max_pending_items: most items waiting to be rendered, over all requests.
        observer: where drops and refusals are reported (the Prometheus metrics).
        before_chunk: called on the worker thread before each chunk; a test hook to make rendering slow.
        chunk_items, chunk_chars: the most one chunk holds (whichever is reached first; one item always goes).
    """

    def __init__(
        self,
        max_request_tokens: int,
        max_pending_items: int,
        *,
        observer: BatchObserver | None = None,
        before_chunk: Callable[[], None] | None = None,
        chunk_items: int = 64,
        chunk_chars: int = 1 << 18,
    ) -> None:
        self.max_request_tokens = max_request_tokens
        self.max_pending_items = max_pending_items
        self.chunk_items = chunk_items
        self.chunk_chars = chunk_chars
        self._observer = observer
        self._before_chunk = before_chunk
        self._executor: ThreadPoolExecutor | None = None
        self.pending_items = 0
        self.counters: Counter[str] = Counter()

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="themis-render")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def render(
        self, items: Sequence[T], render_chunk: RenderChunk, size_of: Callable[[T], int], param: str
    ) -> list[RenderedSequence]:
        """Render ``items`` chunk by chunk on the worker thread; ``param`` names the request's items in errors.

        Raises:
            OverloadedError: ``max_pending_items`` are already waiting to be rendered.
            RequestTooLargeError: the rendered tokens pass ``max_request_tokens``.
            UnavailableError: the worker is not running.
        """
        if self._executor is None:
            raise UnavailableError("the reward service is not started yet")
        if self.pending_items and self.pending_items + len(items) > self.max_pending_items:
            self._count("rejected_render_queue_full", len(items))
            raise OverloadedError(
                f"{self.pending_items} sequences are waiting to be tokenised (--max-queue-items "
                f"{self.max_pending_items}); retry after the Retry-After delay"
            )
        self.pending_items += len(items)
        rendered: list[RenderedSequence] = []
        tokens = 0
        try:
            for start, stop in self._chunks(items, size_of):
                chunk = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._render_chunk, render_chunk, items[start:stop], start
                )
                rendered += chunk
                tokens += sum(len(sequence.input_ids) for sequence in chunk)
                if tokens > self.max_request_tokens:
                    self._count("rejected_too_many_tokens", len(items))
                    raise RequestTooLargeError(
                        f"{param}: more than {self.max_request_tokens} tokens to score (--max-request-tokens, "
                        f"reached by item {stop - 1}); split the call"
                    )
        except asyncio.CancelledError:  # the client left (or timed out): stop before the next chunk
            self._count("dropped_abandoned_rendering", len(items))
            raise
        finally:
            self.pending_items -= len(items)
        return rendered

    def _render_chunk(self, render_chunk: RenderChunk, items: Sequence[T], offset: int) -> list[RenderedSequence]:
        if self._before_chunk is not None:
            self._before_chunk()
        return render_chunk(items, offset)

    def _chunks(self, items: Sequence[T], size_of: Callable[[T], int]) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of consecutive chunks within ``chunk_items`` and ``chunk_chars``."""
        start = chars = 0
        for i, item in enumerate(items):
            chars += size_of(item)
            if i + 1 - start >= self.chunk_items or chars >= self.chunk_chars:
                yield start, i + 1
                start, chars = i + 1, 0
        if start < len(items):
            yield start, len(items)

    def _count(self, reason: str, items: int) -> None:
        self.counters[reason] += items
        if self._observer is not None:
            self._observer.on_drop(reason, items)
