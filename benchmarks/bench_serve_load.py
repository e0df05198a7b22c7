"""``themis serve`` under hostile load: /health latency during a 12 MiB request, memory kept, abandoned work.

Runs the server (``python -m themis_rm.cli serve`` on a tiny model, loopback) once per source tree: this checkout,
and with ``--baseline-src DIR`` another checkout's ``src`` (e.g. a ``git worktree`` of the commit before a change),
in the same run, and prints the ratios. Per server:

* ``health_idle_ms``: median ``GET /health`` latency with nothing else in flight;
* ``health_busy_ms``: the slowest ``/health`` answer while one legal 12 MiB ``/get_reward`` request (twelve
  1 MiB policy strings) is in flight, and ``big_request_s``, its own latency;
* ``rss_mb`` before, ``peak_mb`` (VmHWM) and ``kept_mb`` after the request, from ``/proc/<pid>/status``;
* ``abandoned_scored``: of 20 requests x 100 items sent and then abandoned by their clients, how many items
  the server still scored (``batched_items`` growth once the queue is empty).

    .venv/bin/python benchmarks/bench_serve_load.py --baseline-src /tmp/before/src
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

QUERY_HEAD = "<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


def start_server(src: Path, model_dir: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "themis_rm.cli", "serve", "--model", model_dir, "--port", str(port)]
    command += ["--max-length", "1024", "--log-level", "error"]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1, trust_env=False).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


async def health_ms(http: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    (await http.get("/health")).raise_for_status()
    return (time.perf_counter() - started) * 1000


async def big_request(http: httpx.AsyncClient) -> tuple[float, float]:
    """(slowest /health answer while the 12 MiB request is in flight in ms, the request's own latency in s)."""
    queries = [QUERY_HEAD + "value = 1\n" * 104_857] * 12
    started = time.perf_counter()
    big = asyncio.create_task(http.post("/get_reward", json={"query": queries}, timeout=600))
    slowest = 0.0
    while not big.done():
        slowest = max(slowest, await health_ms(http))
        await asyncio.sleep(0.05)
    (await big).raise_for_status()
    return slowest, time.perf_counter() - started


def abandon(port: int, requests: int, items: int) -> None:
    """Send each request whole and close its connection unanswered (a client timing out)."""
    for r in range(requests):
        body = json.dumps({"query": [f"{QUERY_HEAD}x = {r}_{i}\n" * 40 for i in range(items)]}).encode()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            head = "POST /get_reward HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)


async def measure(src: Path, model_dir: str) -> dict[str, float]:
    port = free_port()
    process = start_server(src, model_dir, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600, trust_env=False) as http:
            idle = statistics.median([await health_ms(http) for _ in range(20)])
            before = memory_mb(process.pid)
            busy, big_s = await big_request(http)
            after = memory_mb(process.pid)
            scored_before = (await http.get("/health")).json()["counters"].get("batched_items", 0)
            await asyncio.to_thread(abandon, port, 20, 100)
            while True:  # until nothing waits and nothing is rendered
                await asyncio.sleep(0.5)
                report = (await http.get("/health")).json()
                if report["queue_items"] == 0 and not report.get("rendering_items", 0):
                    await asyncio.sleep(1.0)  # a batch may still be on the model
                    report = (await http.get("/health")).json()
                    break
        return {
            "health_idle_ms": idle,
            "health_busy_ms": busy,
            "big_request_s": big_s,
            "rss_mb": before["VmRSS"],
            "peak_mb": after["VmHWM"],
            "kept_mb": after["VmRSS"],
            "abandoned_scored": report["counters"].get("batched_items", 0) - scored_before,
        }
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src directory, measured first")
    args = parser.parse_args()
    from themis_rm.tiny import build_tiny_reward_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_reward_model(Path(tmp)))
        runs = {}
        if args.baseline_src:
            runs["baseline"] = asyncio.run(measure(args.baseline_src, model_dir))
        runs["themis"] = asyncio.run(measure(Path(__file__).resolve().parents[1] / "src", model_dir))
    print(f"{'metric':<18}" + "".join(f"{name:>12}" for name in runs) + ("   ratio" if len(runs) == 2 else ""))
    for metric in runs["themis"]:
        values = [run[metric] for run in runs.values()]
        ratio = f"   {values[0] / values[1]:.1f}x" if len(values) == 2 and values[1] else ""
        print(f"{metric:<18}" + "".join(f"{v:>12.1f}" for v in values) + ratio)


if __name__ == "__main__":
    main()
