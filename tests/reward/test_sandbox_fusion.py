"""The SandboxFusion backend against a real HTTP server on 127.0.0.1 that speaks the contract through
SandboxFusion's own SDK models (``sandbox_fusion.RunCodeRequest`` parses what our client sends,
``RunCodeResponse`` builds what it gets back); the server runs the code with a plain subprocess, which is all a
test of the client needs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("sandbox_fusion")
from sandbox_fusion import RunCodeRequest, RunCodeResponse

from themis_rm.errors import ThemisInputError
from themis_rm.reward.composite import CompositeReward
from themis_rm.reward.groups import RewardGroup
from themis_rm.reward.spec import load_reward_spec
from themis_rm.sandbox.stdio import IOCase

SUM_PY = "a, b = map(int, input().split())\nprint(a + b)\n"
SUM_CPP = "#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"


def _execute(request: RunCodeRequest) -> str:
    """What SandboxFusion's runners do for python and cpp, reduced to a subprocess."""
    with tempfile.TemporaryDirectory() as directory:
        compile_result = None
        if request.language == "cpp":
            source = Path(directory, "main.cpp")
            source.write_text(request.code)
            done = subprocess.run(["g++", str(source), "-o", f"{directory}/test"], capture_output=True, text=True)
            compile_result = {"status": "Finished", "return_code": done.returncode, "stdout": "", "stderr": done.stderr}
            if done.returncode != 0:
                return RunCodeResponse(status="Failed", message="", compile_result=compile_result).json()
            argv = [f"{directory}/test"]
        else:
            argv = [sys.executable, "-c", request.code]
        try:
            done = subprocess.run(
                argv, input=request.stdin, capture_output=True, text=True, timeout=request.run_timeout
            )
            run = {"status": "Finished", "return_code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
            run["execution_time"] = 0.01
        except subprocess.TimeoutExpired:
            run = {"status": "TimeLimitExceeded", "execution_time": request.run_timeout}
    status = "Success" if run.get("return_code") == 0 else "Failed"
    return RunCodeResponse(status=status, message="", compile_result=compile_result, run_result=run).json()


class FusionServer:
    """POST /run_code; ``fail_first`` requests are answered 503 (the client retries them)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[dict] = []
        self.fail_first = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if self.path != "/run_code":
                    return self._send(404, {"detail": "Not Found"})
                if len(server.requests) <= server.fail_first:
                    return self._send(503, {"detail": "busy"})
                self._send(200, _execute(RunCodeRequest(**body)))  # the SDK's model validates our request

            def _send(self, code: int, payload: dict | str) -> None:
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fusion(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    servers = []

    def start(**kwargs) -> FusionServer:
        servers.append(FusionServer(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _reward(url: str) -> CompositeReward:
    spec = {"backend": "sandbox_fusion", "url": url, "timeout_s": 3, "workers": 2, "retries": 2}
    return CompositeReward(load_reward_spec({"components": [{"kind": "tests"}], "execution": spec}))


CASES = [IOCase("1 2\n", "3\n"), IOCase("5 5\n", "10\n")]


def test_cases_run_remotely_and_are_judged_here(fusion):
    server = fusion()
    groups = [
        RewardGroup("py", "p", [SUM_PY, "print(0)\n"], io_cases=CASES),
        RewardGroup("cpp", "p", [SUM_CPP, "int main() { return 1; }"], language="Cpp", io_cases=CASES),
    ]
    py, cpp = _reward(server.url).score(groups)
    assert [c.raw["tests"] for c in py.candidates] == [1.0, 0.0]
    assert py.candidates[1].evidence["tests"]["first_failure"]["error"] == "wrong output"
    assert [c.raw["tests"] for c in cpp.candidates] == [1.0, 0.0]
    assert "exit status 1" in cpp.candidates[1].evidence["tests"]["first_failure"]["error"]
    sent = server.requests[0]
    assert {"code", "language", "stdin", "run_timeout", "compile_timeout", "memory_limit_MB"} <= set(sent)
    assert {r["language"] for r in server.requests} == {"python", "cpp"}
    assert not any("output" in r for r in server.requests)  # the expected output never leaves this process


def test_a_busy_server_is_retried_and_a_dead_one_named(fusion):
    server = fusion(fail_first=2)
    (result,) = _reward(server.url).score([RewardGroup("py", "p", [SUM_PY], io_cases=CASES[:1])])
    assert result.candidates[0].raw["tests"] == 1.0 and len(server.requests) == 3
    dead = fusion()
    url = dead.url
    dead.close()
    with pytest.raises(ThemisInputError, match=r"no answer after 3 attempts"):
        _reward(url).score([RewardGroup("py", "p", [SUM_PY], io_cases=CASES[:1])])


def test_test_statements_are_refused_at_start_up_not_run_remotely(fusion):
    server = fusion()
    group = RewardGroup(
        "q", "p", ["def add(a, b): return a + b"], entry_point="add", tests=["assert candidate(1, 2) == 3"]
    )
    with pytest.raises(ThemisInputError, match="would run in the program's own process on the server"):
        _reward(server.url).score([group])
    assert server.requests == []


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_a_compile_error_fails_every_case_with_the_compiler_s_message(fusion):
    server = fusion()
    (result,) = _reward(server.url).score([RewardGroup("c", "p", ["int main( {"], language="Cpp", io_cases=CASES)])
    tests = result.candidates[0].evidence["tests"]
    assert tests["failed"] == 2 and tests["error"].startswith("compile: ") and len(server.requests) == 1
