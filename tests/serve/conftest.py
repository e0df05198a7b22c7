"""Real servers for the serve tests: uvicorn on 127.0.0.1 at a free port, in a thread, stopped gracefully."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import uvicorn

from themis_rm.scoring import Scorer
from themis_rm.serve.app import create_app
from themis_rm.serve.service import RewardService
from themis_rm.serve.settings import ServeSettings


class LiveServer:
    """A uvicorn server on a pre-bound loopback socket; ``url`` is its root."""

    def __init__(self, service: RewardService, settings: ServeSettings) -> None:
        self.service = service
        self.app = create_app(settings, service)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=20)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout_s: float = 30.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture(scope="session")
def serve_scorer(tiny_model_dir: Path) -> Scorer:
    """The model the servers run (the open prompt pack, so criteria work offline without shared/)."""
    return Scorer.from_pretrained(str(tiny_model_dir), prompts="open", max_length=1024)


@pytest.fixture(scope="session")
def offline_scorer(tiny_model_dir: Path) -> Scorer:
    """An independent copy of the same model: the reference every served score must equal."""
    return Scorer.from_pretrained(str(tiny_model_dir), prompts="open", max_length=1024)


@pytest.fixture
def start_server(serve_scorer, tiny_model_dir) -> Iterator[Callable[..., LiveServer]]:
    """Start a server with settings overrides (and optional ``before_batch``/``before_render`` hooks); stopped after
    the test."""
    started: list[LiveServer] = []

    def start(
        before_batch: Callable[[], None] | None = None, before_render: Callable[[], None] | None = None, **overrides
    ) -> LiveServer:
        settings = ServeSettings(model=str(tiny_model_dir), max_length=1024, **overrides)
        service = RewardService(serve_scorer, settings, before_batch=before_batch, before_render=before_render)
        server = LiveServer(service, settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.thread.is_alive():
            server.stop()


@pytest.fixture
def model_gate() -> Iterator[tuple[Callable[[], None], threading.Event, threading.Event]]:
    """A ``before_batch`` hook that holds the model until released: (hook, entered, release); released at teardown."""
    entered, release = threading.Event(), threading.Event()

    def hook() -> None:
        entered.set()
        assert release.wait(30), "test never released the model"

    yield hook, entered, release
    release.set()


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory, qwen_tokenizer):
    """A tiny random causal-LM policy for the RL frameworks' own trainers."""
    from themis_rm.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(
        tmp_path_factory.mktemp("policy"), tokenizer=qwen_tokenizer, hidden_size=32, num_layers=1
    )
