"""Fixtures of the data tests: real git repositories in tmp_path (git as argument lists) and a programmable
OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class GitRepo:
    """A repository in ``path`` with helpers to commit files at fixed dates (deterministic shas)."""

    def __init__(self, path: Path, origin: str | None = None) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")
        self.git("config", "commit.gpgsign", "false")
        if origin:
            self.git("remote", "add", "origin", f"https://github.com/{origin}.git")
        self._clock = 0

    def git(self, *args: str, date: str | None = None) -> str:
        env = {**os.environ, "GIT_AUTHOR_DATE": date or "", "GIT_COMMITTER_DATE": date or ""}
        if date is None:
            env.pop("GIT_AUTHOR_DATE")
            env.pop("GIT_COMMITTER_DATE")
        done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, env=env, check=True)
        return done.stdout.decode()

    def commit(self, files: dict[str, str | bytes | None], message: str, date: str | None = None) -> str:
        """Write (or delete, for None) files and commit them; returns the sha."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                self.git("rm", "-q", "--", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
            self.git("add", "--", name)
        self.git("commit", "-q", "--allow-empty", "--cleanup=verbatim", "-m", message, date=date or self._tick())
        return self.git("rev-parse", "HEAD").strip()

    def _tick(self) -> str:
        """The next commit date: one hour after the previous one, from 2018-01-01."""
        self._clock += 1
        return (datetime(2018, 1, 1, tzinfo=UTC) + timedelta(hours=self._clock)).isoformat()

    def rename(self, old: str, new: str, message: str) -> str:
        self.git("mv", "--", old, new)
        self.git("commit", "-q", "-m", message, date=self._tick())
        return self.git("rev-parse", "HEAD").strip()

    def merge_branch(self, branch: str, files: dict[str, str], message: str, branch_message: str = "") -> str:
        """Commit ``files`` on a new branch (``branch_message``) and merge it back with a merge commit."""
        self.git("checkout", "-q", "-b", branch)
        self.commit(files, branch_message or f"work on {branch}")
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", "-m", message, branch, date=self._tick())
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def make_repo(tmp_path):
    """``make_repo("name", origin="owner/name")`` -> a fresh :class:`GitRepo` under tmp_path."""

    def make(name: str, origin: str | None = None, root: Path | None = None) -> GitRepo:
        return GitRepo((root or tmp_path) / name, origin=origin)

    return make


class ProgrammableLLM:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 whose answer is ``reply(user_text, attempt)``.

    ``reply`` returns the answer text, an ``(http_status, text)`` pair, or ``bytes`` sent as the whole 200 response
    body (to script malformed answers); it also sees how many times this exact
    prompt was asked before (``attempt`` from 1), so tests can script transient failures.
    """

    def __init__(self, reply, delay_s: float = 0.0) -> None:
        self.reply = reply
        self.delay_s = delay_s
        self.bodies: list[dict] = []
        self.attempts: Counter[str] = Counter()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with server.lock:
                    server.bodies.append(body)
                    server.attempts[prompt] += 1
                    attempt = server.attempts[prompt]
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay_s)
                    answer = server.reply(prompt, attempt)
                finally:
                    with server.lock:
                        server.in_flight -= 1
                if isinstance(answer, bytes):
                    self._send(200, answer)
                    return
                status, text = answer if isinstance(answer, tuple) else (200, answer)
                payload = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                }
                self._send(
                    status, json.dumps(payload if status == 200 else {"error": {"message": "scripted"}}).encode()
                )

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 refuses bursts of concurrent requests (spurious retries)


@pytest.fixture
def llm_server(monkeypatch):
    """``start(reply, delay_s=0)`` -> (server, base_url): a real HTTP server on 127.0.0.1, stopped after the test."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    servers = []

    def start(reply, delay_s: float = 0.0):
        scripted = ProgrammableLLM(reply, delay_s)
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
