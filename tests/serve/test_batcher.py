"""The cross-request batcher on its own: ordering, budgets, backpressure, cancellation, drain, failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from themis_rm.serve.batcher import BatchLimits, MicroBatcher
from themis_rm.serve.errors import OverloadedError, UnavailableError


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def limits(**overrides) -> BatchLimits:
    values = {"max_batch_items": 64, "max_batch_tokens": 10**6, "max_wait_ms": 20, "max_queue_items": 10**4}
    return BatchLimits(**{**values, **overrides})


def test_each_request_gets_exactly_its_own_scores_in_order():
    batch_sizes = []

    def score(items):
        batch_sizes.append(len(items))
        return [float(item) for item in items]

    async def main():
        batcher = MicroBatcher(score, lambda item: 1, limits())
        batcher.start()
        jobs = [[i * 1000 + k for k in range(i % 5 + 1)] for i in range(100)]
        results = await asyncio.gather(*(batcher.submit(job) for job in jobs))
        await batcher.close()
        return jobs, results

    jobs, results = run(main())
    assert results == [[float(item) for item in job] for job in jobs]
    assert len(batch_sizes) < len(jobs) and max(batch_sizes) > 5  # requests were really gathered together


def test_batches_respect_token_and_item_budgets_and_a_huge_job_goes_alone():
    batches = []

    def score(items):
        batches.append(list(items))
        return [0.0] * len(items)

    async def main():
        batcher = MicroBatcher(score, lambda tokens: tokens, limits(max_batch_items=4, max_batch_tokens=50))
        batcher.start()
        jobs = [[10] for _ in range(30)] + [[100]] + [[10, 10] for _ in range(10)]
        await asyncio.gather(*(batcher.submit(job) for job in jobs))
        await batcher.close()

    run(main())
    assert sorted(x for batch in batches for x in batch) == sorted([10] * 50 + [100])
    for batch in batches:
        assert batch == [100] or (sum(batch) <= 50 and len(batch) <= 4), batch
    assert any(len(batch) > 1 for batch in batches)


def test_full_queue_refuses_at_once_and_a_cancelled_waiter_leaves_the_queue():
    entered, release = threading.Event(), threading.Event()

    def score(items):
        entered.set()
        release.wait(10)
        return [float(item) for item in items]

    async def main():
        batcher = MicroBatcher(score, lambda item: 1, limits(max_batch_items=1, max_wait_ms=0, max_queue_items=3))
        batcher.start()
        first = asyncio.create_task(batcher.submit([0]))
        await wait_until(entered.is_set)  # the model is busy with the first request
        waiting = [asyncio.create_task(batcher.submit([i])) for i in (1, 2, 3)]
        await wait_until(lambda: batcher.queued == 3)
        with pytest.raises(OverloadedError, match="queue is full"):
            await batcher.submit([4])
        waiting[0].cancel()
        await wait_until(lambda: batcher.queued == 2)
        release.set()
        results = await asyncio.gather(first, *waiting[1:])
        await batcher.close()
        return batcher, results

    batcher, results = run(main())
    assert results == [[0.0], [2.0], [3.0]]
    assert batcher.counters["rejected_queue_full"] == 1
    assert batcher.counters["dropped_abandoned_waiting"] == 1


def test_close_finishes_queued_work_then_refuses_new_requests():
    def score(items):
        time.sleep(0.01)
        return [float(item) for item in items]

    async def main():
        batcher = MicroBatcher(score, lambda item: 1, limits(max_batch_items=2, max_wait_ms=1))
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit([i])) for i in range(10)]
        await asyncio.sleep(0)  # every task is queued before the shutdown starts
        await batcher.close(timeout_s=10)
        assert all(task.done() for task in tasks)
        with pytest.raises(UnavailableError, match="shutting down"):
            await batcher.submit([1])
        return [task.result() for task in tasks]

    assert run(main()) == [[float(i)] for i in range(10)]


def test_a_drain_that_times_out_fails_waiting_requests_instead_of_hanging_them():
    entered, release = threading.Event(), threading.Event()

    def score(items):
        entered.set()
        release.wait(10)
        return [0.0] * len(items)

    async def main():
        batcher = MicroBatcher(score, lambda item: 1, limits(max_batch_items=1, max_wait_ms=0))
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit([i])) for i in range(3)]
        await wait_until(entered.is_set)
        await batcher.close(timeout_s=0.1)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        release.set()
        return batcher, outcomes

    batcher, outcomes = run(main())
    assert all(isinstance(outcome, UnavailableError) for outcome in outcomes)
    assert batcher.counters["failed_shutdown"] == 3


def test_a_failing_item_fails_only_its_own_request():
    def score(items):
        if "bad" in items:
            raise RuntimeError("boom")
        return [1.0] * len(items)

    async def main():
        batcher = MicroBatcher(score, lambda item: 1, limits(max_wait_ms=50))
        batcher.start()
        outcomes = await asyncio.gather(
            batcher.submit(["a"]), batcher.submit(["bad"]), batcher.submit(["b", "c"]), return_exceptions=True
        )
        await batcher.close()
        return batcher, outcomes

    batcher, outcomes = run(main())
    assert outcomes[0] == [1.0] and outcomes[2] == [1.0, 1.0]
    assert isinstance(outcomes[1], RuntimeError)
    assert batcher.counters["batch_retried_alone"] == 3 and batcher.counters["failed_jobs"] == 1
