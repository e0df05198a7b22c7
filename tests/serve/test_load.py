"""Under load the server keeps answering: tokenising happens off the event loop, a request's tokens are capped, and
work for clients that left is cancelled, not done (issue 21, items 3-4). Timing-free: each test waits for an
event (a gate entered, a counter moved), never for a duration."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from themis_rm.serve.render_worker import RenderWorker


def _health(server) -> dict:
    with httpx.Client(base_url=server.url, timeout=10, trust_env=False) as http:
        answer = http.get("/health")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _wait_until(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def _post_and_leave(server, path: str, body: dict, leave_when=lambda: True) -> None:
    """What a client that times out does: send the whole request, then (once ``leave_when()``) close the
    connection unanswered."""
    payload = json.dumps(body).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        _wait_until(leave_when)


@pytest.fixture
def render_gate():
    """A ``before_render`` hook that holds the render thread until released; counts the chunks it saw."""
    entered, release, chunks = threading.Event(), threading.Event(), []

    def hook() -> None:
        chunks.append(1)
        entered.set()
        assert release.wait(30), "test never released the render thread"

    yield hook, entered, release, chunks
    release.set()


def test_health_answers_while_a_request_is_being_tokenised(start_server, render_gate):
    """Tokenisation used to run on the event loop: with the tokenizer busy, /health waited for it (33 s for 12 MiB)."""
    hook, entered, release, _ = render_gate
    server = start_server(before_render=hook)
    queries = ["<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n" + "x = 1\n" * 2000] * 100

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=30, trust_env=False) as http:
            big = asyncio.create_task(http.post("/get_reward", json={"query": queries}))
            assert await asyncio.to_thread(entered.wait, 10)  # the render thread holds the big request
            health = await http.get("/health")
            release.set()
            return health, await big

    health, big = asyncio.run(asyncio.wait_for(main(), 60))
    assert health.status_code == 200 and health.json()["rendering_items"] == 100
    assert big.status_code == 200 and len(big.json()["rewards"]) == 100


def test_health_answers_during_a_real_12_mib_request(start_server):
    """No hook: twelve 1 MiB responses (a legal body) take seconds to tokenise, and /health answers meanwhile."""
    server = start_server()
    queries = ["<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n" + "value = 1\n" * 104_857] * 12
    in_flight: list[dict] = []

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=120, trust_env=False) as http:
            big = asyncio.create_task(http.post("/get_reward", json={"query": queries}))
            while not big.done():
                report = (await http.get("/health")).json()
                if not big.done() and report["rendering_items"] + report["queue_items"]:
                    in_flight.append(report)
                await asyncio.sleep(0.02)
            return await big

    big = asyncio.run(asyncio.wait_for(main(), 120))
    assert big.status_code == 200 and len(big.json()["rewards"]) == 12
    assert in_flight, "/health never answered while the 12 MiB request was being tokenised or scored"


def test_a_request_over_the_token_cap_gets_413_and_stops_rendering(start_server, render_gate):
    hook, _, release, chunks = render_gate
    release.set()
    server = start_server(before_render=hook, max_request_tokens=1500)
    long = "<|im_start|>user\nf<|im_end|>\n<|im_start|>assistant\n" + "x = 1\n" * 1000  # cut to 1024 tokens each
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as http:
        refused = http.post("/get_reward", json={"query": [long] * 300})
        fits = http.post("/get_reward", json={"query": [long]})
    assert refused.status_code == 413, refused.text
    message = refused.json()["error"]["message"]
    assert "--max-request-tokens" in message and "query" in message
    assert len(chunks) == 1 + 1  # the refused request stopped after its first 64-item chunk; then the one that fits
    assert fits.status_code == 200
    assert _health(server)["counters"]["rejected_too_many_tokens"] == 300


def test_a_client_that_leaves_while_queued_is_not_scored(start_server, model_gate):
    """RL clients time out and retry: their abandoned requests used to stay queued and be scored all the same."""
    hook, entered, release = model_gate
    server = start_server(before_batch=hook, max_batch_items=1)
    good = {"items": [{"prompt": "Write f.", "response": "def f(): pass"}]}
    abandoned = {"items": [{"prompt": "Write g.", "response": f"def g(): return {i}"} for i in range(50)]}

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=30, trust_env=False) as http:
            first = asyncio.create_task(http.post("/v1/rewards", json=good))
            assert await asyncio.to_thread(entered.wait, 10)  # the model is busy with the first request
            queued = lambda: server.service.batcher.queued == 50  # noqa: E731
            await asyncio.to_thread(_post_and_leave, server, "/v1/rewards", abandoned, queued)
            await asyncio.to_thread(_wait_until, lambda: server.service.counters["abandoned_requests"] == 1)
            release.set()
            return await first

    first = asyncio.run(asyncio.wait_for(main(), 60))
    assert first.status_code == 200
    counters = _health(server)["counters"]
    assert counters["dropped_abandoned_waiting"] == 50 and counters["batched_items"] == 1
    with httpx.Client(base_url=server.url, timeout=10, trust_env=False) as http:
        assert 'themis_requests_total{endpoint="/v1/rewards",status="499"} 1.0' in http.get("/metrics").text


def test_a_client_that_leaves_while_its_request_is_tokenised_stops_it(start_server, render_gate):
    hook, entered, release, chunks = render_gate
    server = start_server(before_render=hook)
    queries = [f"<|im_start|>user\nf<|im_end|>\n<|im_start|>assistant\nx = {i}" for i in range(200)]  # 4 chunks
    _post_and_leave(server, "/get_reward", {"query": queries})
    assert entered.wait(10)
    _wait_until(lambda: server.service.counters["abandoned_requests"] == 1)
    release.set()
    _wait_until(lambda: server.service.render_worker.pending_items == 0)
    counters = _health(server)["counters"]
    assert counters["dropped_abandoned_rendering"] == 200 and counters.get("batched_items", 0) == 0
    assert len(chunks) == 1  # the chunk being rendered finished; the other three never started


@pytest.mark.parametrize(
    ("sizes", "chunks"),
    [([1] * 5, [(0, 2), (2, 4), (4, 5)]), ([10, 1, 1], [(0, 1), (1, 3)]), ([], [])],
)
def test_render_chunks_stay_within_items_and_characters(sizes, chunks):
    worker = RenderWorker(100, 100, chunk_items=2, chunk_chars=8)
    assert list(worker._chunks(sizes, lambda size: size)) == chunks
