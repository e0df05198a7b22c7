"""Prometheus metrics of one server: requests, latency, queue depth, batch sizes, tokens/s, every reject and drop.

Each app owns its own ``CollectorRegistry`` (no process-global state), so tests and benchmarks can run several
servers in one process. ``MetricsMiddleware`` times every HTTP request at the ASGI level, so answers produced by
the other middlewares (401, 413) are counted too.
"""

from __future__ import annotations

import time

from themis_rm.errors import MissingExtraError

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("prometheus-client", "serve") from exc

ENDPOINTS = frozenset(
    {
        "/get_reward",
        "/v1/rewards",
        "/classify",
        "/pooling",
        "/score",
        "/v1/score",
        "/rerank",
        "/v1/rerank",
        "/v2/rerank",
        "/v1/models",
        "/health",
        "/metrics",
    }
)  # a path label each; any other path is counted as "other", so a scanner cannot grow the label set
CLIENT_CLOSED = 499  # nginx's status for a request whose client left before the answer (none is sent)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    """The server's metrics; implements the batcher's :class:`~themis_rm.serve.batcher.BatchObserver`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("themis_requests", "HTTP requests answered.", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "themis_request_latency_seconds", "Arrival to answer.", ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("themis_queue_items", "Sequences waiting for a batch.", registry=r)
        self.batch_items = Histogram("themis_batch_items", "Sequences per batch.", buckets=_BATCH_BUCKETS, registry=r)
        self.batch_tokens = Histogram(
            "themis_batch_tokens", "Real tokens per batch.", buckets=tuple(64 * 2**i for i in range(12)), registry=r
        )
        self.batch_seconds = Histogram(
            "themis_batch_seconds", "Model time per batch.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.tokens = Counter("themis_scored_tokens", "Real tokens scored.", registry=r)
        self.sequences = Counter("themis_scored_sequences", "Sequences scored.", registry=r)
        self.tokens_per_second = Gauge("themis_tokens_per_second", "Throughput of the last batch.", registry=r)
        self.rejected = Counter("themis_rejected_requests", "Requests answered with an error.", ["reason"], registry=r)
        self.dropped = Counter("themis_dropped_items", "Sequences refused or dropped.", ["reason"], registry=r)
        self.truncated = Counter("themis_truncated_sequences", "Sequences cut to --max-length.", registry=r)

    # ------------------------------------------------------------------------------------ BatchObserver
    def on_queue(self, items: int) -> None:
        self.queue_depth.set(items)

    def on_batch(self, items: int, tokens: int, seconds: float) -> None:
        self.batch_items.observe(items)
        self.batch_tokens.observe(tokens)
        self.batch_seconds.observe(seconds)
        self.tokens.inc(tokens)
        self.sequences.inc(items)
        if seconds > 0:
            self.tokens_per_second.set(tokens / seconds)

    def on_drop(self, reason: str, items: int) -> None:
        self.dropped.labels(reason).inc(items)

    # ------------------------------------------------------------------------------------------- other
    def reject(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by endpoint (unknown paths share one label) and status."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        started = time.perf_counter()
        status: int | None = None

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        failed = True
        try:
            await self.app(scope, receive, send_and_record)
            failed = False
        finally:
            # No answer: the app failed (the server answers 500), or it returned because its client had left.
            status = status or (500 if failed else CLIENT_CLOSED)
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
