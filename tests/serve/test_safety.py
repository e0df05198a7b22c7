"""Bad, oversized, unauthorised and overloaded requests get the right code, and the server keeps answering."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx
import pytest

GOOD = {"items": [{"prompt": "Write f.", "response": "def f(): pass"}]}


def client(server, **headers) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, trust_env=False, headers=headers)


def still_answers(http: httpx.Client) -> None:
    answer = http.post("/v1/rewards", json=GOOD)
    assert answer.status_code == 200, answer.text


def error_of(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "param", "words"),
    [
        ("/get_reward", {"query": ["ok", 7]}, "query[1]", "valid string"),
        ("/get_reward", {"prompts": ["x"]}, "query", "required"),
        ("/get_reward", {"query": ["<|endoftext|>"]}, "query[0]", "empty"),
        ("/get_reward", {"query": ["a", "b"], "prompts": ["a"]}, "prompts", "2 queries"),
        ("/classify", {"input": {"text": "x"}}, "input", "valid list"),
        ("/classify", {"input": "x", "activation": "yes"}, "activation", "valid boolean"),
        ("/v1/rewards", {"items": [{"prompt": "p", "response": 3}]}, "items[0].response", "valid string"),
        ("/v1/rewards", {"items": [{"prompt": "p", "respnse": "r"}]}, "items[0].response", "required"),
        ("/v1/rewards", {"items": [{"response": "r"}]}, "items[0]", "exactly one of"),
        ("/v1/rewards", {"items": []}, "items", "at least 1"),
        # blank prompts and responses: refused as themis score refuses them (/v1/score scored them)
        ("/v1/rewards", {"items": [{"prompt": "p", "response": " \n"}]}, "items[0].response", "nothing to score"),
        ("/v1/rewards", {"items": [{"prompt": "", "response": "r"}]}, "items[0].prompt", "nothing to score"),
        ("/v1/score", {"queries": "p", "documents": ["r", ""]}, "documents[1]", "nothing to score"),
        ("/score", {"text_1": "  ", "text_2": "r"}, "text_1[0]", "nothing to score"),
        ("/rerank", {"query": "p", "documents": ["r", "\t"]}, "documents[1]", "nothing to score"),
        (
            "/classify",
            {"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": ""}]},
            "body",
            "nothing to score",
        ),
        ("/v1/rewards", {**GOOD, "criteria": ["security", "bogus"]}, "criteria[1]", "unknown criterion 'bogus'"),
        ("/v1/rewards", {**GOOD, "criteria": ["security", "sh"]}, "criteria[1]", "asked for twice"),
        (
            "/v1/rewards",
            {"items": [{"messages": [{"role": "system", "content": "S"}], "response": "r"}], "criteria": "security"},
            "items[0].messages",
            "only system turns",
        ),
        (
            "/v1/rewards",
            {"items": [{"messages": [{"role": "user", "content": [{"type": "image_url"}]}], "response": "r"}]},
            "items[0].messages[0].content",
            "content part 0",
        ),
    ],
)
def test_wrong_types_and_values_get_422_naming_the_field(start_server, path, body, param, words):
    server = start_server()
    with client(server) as http:
        error = error_of(http.post(path, json=body), 422)
        assert error["param"] == param and param in error["message"] and words in error["message"]
        still_answers(http)


def test_malformed_json_gets_422_and_the_server_keeps_answering(start_server):
    server = start_server()
    with client(server) as http:
        answer = http.post("/get_reward", content=b'{"query": ["a",', headers={"content-type": "application/json"})
        assert "not valid JSON" in error_of(answer, 422)["message"]
        still_answers(http)


def test_oversized_bodies_and_too_many_items_get_413(start_server):
    server = start_server(max_body_bytes=4096, max_items_per_request=4)
    big = {"query": ["x" * 5000]}
    with client(server) as http:
        assert "--max-body-bytes" in error_of(http.post("/get_reward", json=big), 413)["message"]
        chunked = (chunk for chunk in (b'{"query": ["', b"y" * 5000, b'"]}'))  # no Content-Length
        answer = http.post("/get_reward", content=chunked, headers={"content-type": "application/json"})
        assert error_of(answer, 413)["type"] == "request_too_large"
        still_answers(http)
        assert "--max-items-per-request" in error_of(http.post("/classify", json={"input": ["a"] * 5}), 413)["message"]
        criteria_times_items = {"items": GOOD["items"] * 3, "criteria": ["security", "runtime"]}
        assert "6 sequences" in error_of(http.post("/v1/rewards", json=criteria_times_items), 413)["message"]
        still_answers(http)


def test_api_key_is_required_except_for_health(start_server):
    server = start_server(api_key="s3cret")
    with client(server) as anonymous, client(server, authorization="Bearer wrong") as wrong:
        answer = anonymous.post("/v1/rewards", json=GOOD)
        assert error_of(answer, 401)["type"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        error_of(wrong.post("/v1/rewards", json=GOOD), 401)
        error_of(anonymous.get("/metrics"), 401)
        assert anonymous.get("/health").status_code == 200
    with client(server, authorization="Basic s3cret") as other_scheme:
        error_of(other_scheme.post("/v1/rewards", json=GOOD), 401)
    for scheme in ("bearer", "BEARER"):  # the scheme is case-insensitive (RFC 9110); lower case got 401
        with client(server, authorization=f"{scheme}  s3cret") as http:
            still_answers(http)
    with client(server, authorization="Bearer s3cret") as http:
        still_answers(http)
        assert 'themis_rejected_requests_total{reason="unauthorized"} 4.0' in http.get("/metrics").text


@pytest.mark.parametrize(("overrides", "status"), [({}, 503), ({"queue_full_status": 429}, 429)])
def test_a_full_queue_answers_503_or_429_with_retry_after_then_recovers(start_server, model_gate, overrides, status):
    """503 by default: verl raises on any 4xx without retrying, but retries a 5xx."""
    hook, entered, release = model_gate
    server = start_server(
        before_batch=hook, max_queue_items=2, max_items_per_request=2, max_batch_items=1, max_wait_ms=0, **overrides
    )

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=30, trust_env=False) as http:
            first = asyncio.create_task(http.post("/v1/rewards", json=GOOD))
            assert await asyncio.to_thread(entered.wait, 10)  # the model is busy with the first request
            queued = [asyncio.create_task(http.post("/v1/rewards", json=GOOD)) for _ in range(2)]
            await _wait_for(lambda: server.service.batcher.queued == 2)
            refused = await http.post("/v1/rewards", json=GOOD)
            release.set()
            return refused, await asyncio.gather(first, *queued)

    refused, answered = asyncio.run(asyncio.wait_for(main(), 60))
    assert error_of(refused, status)["type"] == "overloaded" and refused.headers["retry-after"] == "1"
    assert [answer.status_code for answer in answered] == [200, 200, 200]
    with client(server) as http:
        still_answers(http)
    assert server.service.batcher.counters["rejected_queue_full"] == 1


def test_a_request_past_its_timeout_gets_503_with_retry_after(start_server, model_gate):
    hook, _, release = model_gate
    server = start_server(before_batch=hook, request_timeout_s=0.5, retry_after_s=3)
    with client(server) as http:
        answer = http.post("/v1/rewards", json=GOOD)
        release.set()
        assert error_of(answer, 503)["type"] == "unavailable" and answer.headers["retry-after"] == "3"
        still_answers(http)
    assert server.service.health()["counters"]["timed_out_requests"] == 1


def test_graceful_shutdown_answers_every_in_flight_request(start_server, model_gate):
    hook, entered, release = model_gate
    server = start_server(before_batch=hook, max_batch_items=1, max_wait_ms=0)
    answers: list[httpx.Response] = []

    def post() -> None:
        with client(server) as http:
            answers.append(http.post("/v1/rewards", json=GOOD))

    posters = [threading.Thread(target=post) for _ in range(3)]
    for poster in posters:
        poster.start()
    assert entered.wait(10)
    _wait_until(lambda: server.service.batcher.queued == 2)
    stopper = threading.Thread(target=server.stop)
    stopper.start()  # uvicorn stops accepting, then waits for the three requests
    time.sleep(0.2)
    release.set()
    stopper.join(30)
    for poster in posters:
        poster.join(30)
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert not server.thread.is_alive()
    with pytest.raises(httpx.ConnectError), client(server) as http:
        http.get("/health")


async def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_refused_requests_are_logged_with_the_request_id_the_client_got(start_server, caplog):
    """Clients drop error bodies (OpenRLHF trains on None after five retries): the reason must reach the log."""
    server = start_server()
    with caplog.at_level(logging.WARNING, logger="themis_rm.serve.requests"), client(server) as http:
        mine = http.post("/get_reward", json={"prompts": ["x"]}, headers={"X-Request-Id": "step-7.rollout-3"})
        fresh = http.post("/classify", json={"input": {"text": "x"}})
        fine = http.get("/health")
    assert mine.status_code == 422 and mine.headers["x-request-id"] == "step-7.rollout-3"
    assert fresh.status_code == 422 and len(fresh.headers["x-request-id"]) == 16 and fine.headers["x-request-id"]
    logged = [r.getMessage() for r in caplog.records if r.name == "themis_rm.serve.requests"]
    assert any("POST /get_reward -> 422" in line and "(request step-7.rollout-3)" in line for line in logged)
    assert any(fresh.headers["x-request-id"] in line and "input" in line for line in logged)
