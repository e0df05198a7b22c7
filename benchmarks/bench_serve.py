"""Reward serving throughput and latency: themis serve (cross-request batching) vs one request per forward.

Both servers run the same tiny model in their own process on 127.0.0.1 and answer OpenRLHF-style
``POST /get_reward`` requests with one chat-formatted query each (what an async RL loop sends per rollout):

* ``baseline``: the OpenRLHF ``serve_rm`` behaviour re-created: an ``async def`` FastAPI route that scores its
  request on the spot, alone, blocking the event loop for the forward pass;
* ``themis``: ``themis_rm.serve.create_app``: requests from all clients gathered into token-budget batches on a
  model thread.

For each concurrency level (default 1, 8, 64 clients) both servers get the same requests after a warm-up,
alternating ``--repeats`` times (the best run of each is kept: the CI-class VM is shared). The script reports
throughput, p50/p99 latency, server CPU per request and the themis/baseline ratios, and checks both servers gave
the same scores. Clients are cheap h11 connections (see :class:`Connection`). Loopback only; every level is
bounded by ``--requests`` and ``--max-seconds``.

    .venv/bin/python benchmarks/bench_serve.py --requests 640 --repeats 2                 # code-length responses
    .venv/bin/python benchmarks/bench_serve.py --requests 640 --repeats 2 --max-lines 8   # short responses
    .venv/bin/python benchmarks/bench_serve.py --criteria full --prompt-pack PACK --max-length 2048  # Themis criteria

With ``--criteria``, every rollout must be scored under the criterion system prompt (Themis-RM's setting):
``themis`` gets the policy-formatted query and re-renders it (``--rerender --criteria``, engine ``auto``, so the
shared system prompt is computed once per batch); the baseline gets the same conversation already rendered with
the system turn and runs it whole. Both see the same token ids (the score comparison checks it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h11
import httpx
import numpy as np
from fastapi import FastAPI, Request  # module level: FastAPI resolves the route's annotations here

ROLES = ("baseline", "themis")
SCORE_TOLERANCE = 1e-4  # fp32: both servers must see the same token ids


# ------------------------------------------------------------------------------------------------ servers
def baseline_app(model_dir: str, max_length: int):
    """One forward per request, inside the request handler (as OpenRLHF's serve_rm does)."""
    from themis_rm.scoring import Scorer

    scorer = Scorer.from_pretrained(model_dir, max_length=max_length, engine="padded")
    tokenizer = scorer.loaded.tokenizer
    app = FastAPI()

    @app.post("/get_reward")
    async def get_reward(request: Request) -> dict:
        queries = (await request.json())["query"]
        rewards = []
        for query in queries:  # each query alone, blocking the loop
            ids = tokenizer(query, add_special_tokens=False)["input_ids"][-scorer.max_length :]
            rewards.append(float(scorer.engine.score([ids])[0]))
        return {"rewards": rewards}

    return app


def themis_app(args: argparse.Namespace):
    from themis_rm.serve import ServeSettings, create_app

    criteria = {} if args.criteria == "none" else {"criteria": args.criteria, "prompt_pack": args.prompts}
    settings = ServeSettings(
        model=args.model_dir,
        max_length=args.max_length,
        max_wait_ms=args.max_wait_ms,
        batch_tokens=args.batch_tokens,
        max_batch_items=args.max_batch_items,
        engine=args.engine,
        **criteria,
    )
    return create_app(settings)


def run_server(args: argparse.Namespace) -> None:
    """Child process: bind a loopback port, print it, serve until SIGINT."""
    import torch
    import uvicorn

    torch.set_num_threads(args.torch_threads)
    app = baseline_app(args.model_dir, args.max_length) if args.serve_role == "baseline" else themis_app(args)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio then sets TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it shut down on
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


class ServerProcess:
    def __init__(self, role: str, args: argparse.Namespace, model_dir: str) -> None:
        command = [sys.executable, __file__, "--serve-role", role, "--model-dir", model_dir]
        command += ["--max-length", str(args.max_length), "--max-wait-ms", str(args.max_wait_ms)]
        command += ["--torch-threads", str(args.torch_threads), "--batch-tokens", str(args.batch_tokens)]
        command += ["--max-batch-items", str(args.max_batch_items), "--criteria", args.criteria]
        command += ["--engine", args.engine]
        command += ["--prompt-pack", args.prompts] if args.prompts else []
        env = {**os.environ, "NO_PROXY": "127.0.0.1"}
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        self.url = f"http://127.0.0.1:{self.process.stdout.readline().strip()}"
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                httpx.post(f"{self.url}/get_reward", json={"query": ["warm up"]}, timeout=10, trust_env=False)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"server at {self.url} did not come up")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)


# ------------------------------------------------------------------------------------------------ load
class Connection:
    """One keep-alive HTTP/1.1 connection driven by h11 (uvicorn's own HTTP library) over asyncio streams.

    A load generator must cost far less per request than the servers it measures; httpx spends a few ms of CPU
    per request, which on a 2-core machine would cap both servers at the client's speed.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.protocol = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = httpx.URL(url).host, httpx.URL(url).port
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        headers = [("Host", self.host), ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        message = self.protocol.send(h11.Request(method="POST", target=path, headers=headers))
        message += self.protocol.send(h11.Data(data=body)) + self.protocol.send(h11.EndOfMessage())
        self.writer.write(message)
        status, chunks = 0, []
        while True:
            event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                self.protocol.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.protocol.start_next_cycle()
                return status, b"".join(chunks)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def drive(url: str, queries: list[str], clients: int, max_seconds: float) -> tuple[list[float], dict, float]:
    """Send ``queries`` (one per request) from ``clients`` concurrent clients; latencies, scores, wall time.

    Each client has its own connection, as separate RL rollout workers do.
    """
    latencies: list[float] = []
    scores: dict[int, float] = {}
    next_index = 0
    deadline = time.monotonic() + max_seconds

    async def client() -> None:
        nonlocal next_index
        connection = await Connection.open(url)
        while next_index < len(queries) and time.monotonic() < deadline:
            index, next_index = next_index, next_index + 1
            body = json.dumps({"query": [queries[index]]}).encode()
            started = time.perf_counter()
            status, answer = await connection.post("/get_reward", body)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"{url} answered {status}: {answer[:300]!r}")
            scores[index] = json.loads(answer)["rewards"][0]
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, scores, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (Linux ``/proc``; NaN elsewhere).

    Less sensitive to other tenants of a shared machine than wall-clock throughput.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarize(latencies: list[float], wall: float) -> dict:
    values = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies),
        "req_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
    }


PROBLEM = (
    "Given a list of integers xs and a list of weights of the same length, return the weighted sum of xs. "
    "Raise ValueError when the lengths differ, treat an empty list as 0, accept negative weights, and keep the "
    "function pure: do not modify either list. Write it in idiomatic Python with a docstring and type hints, "
    "and make it run in linear time with constant extra memory."
)


def workload(
    model_dir: str, count: int, max_lines: int, system: str | None, group_size: int = 1, seed: int = 0
) -> dict[str, list[str]]:
    """Chat-formatted (prompt, code response) strings of mixed length, rendered with the model's template.

    ``themis`` gets what the policy sends (no system turn); ``baseline`` gets what the reward model must see
    (the criterion system turn included, when there is one): the same token ids either way. With ``group_size``
    N > 1, consecutive requests are N rollouts of one task with a longer statement (GRPO-style groups).
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rng = np.random.default_rng(seed)
    queries: dict[str, list[str]] = {role: [] for role in ROLES}
    for i in range(count):
        count_lines = int(rng.integers(2, max_lines))
        lines = "".join(f"    total += xs[{k}] * {int(rng.integers(100))}\n" for k in range(count_lines))
        task = f"Task {i}: write weighted_sum(xs) in Python."
        if group_size > 1:
            task = f"Task {i // group_size}. {PROBLEM}"
        messages = [
            {"role": "user", "content": task},
            {"role": "assistant", "content": f"def weighted_sum(xs):\n    total = 0\n{lines}    return total"},
        ]
        queries["themis"].append(tokenizer.apply_chat_template(messages, tokenize=False))
        system_turn = [{"role": "system", "content": system}] if system is not None else []
        queries["baseline"].append(tokenizer.apply_chat_template(system_turn + messages, tokenize=False))
    return queries


def criteria_system_prompt(criteria: str, prompts: str | None) -> str | None:
    """The evaluation system prompt the reward model sees under ``criteria`` (None for ``none``)."""
    if criteria == "none":
        return None
    from themis_rm.packs import load_prompt_pack

    pack = load_prompt_pack(prompts)
    return pack.eval_prompt(pack.resolve(criteria))


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--requests", type=int, default=640, help="requests per server and level (upper bound)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound per server and level")
    parser.add_argument("--hidden", type=int, default=64, help="tiny model width (the tests' model: 64)")
    parser.add_argument("--layers", type=int, default=2, help="tiny model depth (the tests' model: 2)")
    parser.add_argument("--max-lines", type=int, default=40, help="response length: 2..N code lines (~12 tokens each)")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="per server; 1 keeps the two servers from fighting for cores"
    )
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--criteria", default="none", help="score every rollout under these criteria (e.g. full)")
    parser.add_argument(
        "--prompt-pack", "--prompts", dest="prompts", help="prompt pack for --criteria (default: the official strings)"
    )
    parser.add_argument("--group-size", type=int, default=1, help="rollouts per task prompt (GRPO-style groups)")
    parser.add_argument("--engine", default="auto", help="themis: --engine (server default auto)")
    parser.add_argument("--max-wait-ms", type=float, default=0.0, help="themis: batching window (server default)")
    parser.add_argument("--max-batch-items", type=int, default=256, help="themis: sequences per gathered batch")
    parser.add_argument(
        "--batch-tokens", type=int, default=4096, help="themis: padded tokens per forward (CPU sweet spot ~2-4k)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs per level; the best is kept")
    parser.add_argument("--output", type=Path, help="also write the results as JSON")
    parser.add_argument("--serve-role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_role:
        run_server(args)
        return

    from themis_rm.tiny import build_tiny_reward_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_reward_model(tmp, hidden_size=args.hidden, num_layers=args.layers))
        queries = workload(
            model_dir,
            args.requests,
            args.max_lines,
            criteria_system_prompt(args.criteria, args.prompts),
            group_size=args.group_size,
        )
        servers = {role: ServerProcess(role, args, model_dir) for role in ROLES}
        results, max_diff = [], 0.0
        try:
            for clients in args.concurrency:
                row, seen = measure_level(servers, queries, clients, args)
                common = sorted(set(seen["baseline"]) & set(seen["themis"]))
                max_diff = max([max_diff] + [abs(seen["baseline"][i] - seen["themis"][i]) for i in common])
                results.append(row)
                print_row(row)
        finally:
            for server in servers.values():
                server.stop()
    print(f"max |score difference| between the servers: {max_diff:.2e}")
    if max_diff > SCORE_TOLERANCE:  # different token ids: the throughput comparison would be meaningless
        raise SystemExit(f"the two servers scored the same requests differently (max |diff| {max_diff:.2e})")
    if args.output:
        args.output.write_text(json.dumps({"args": vars(args) | {"output": str(args.output)}, "results": results}))


def measure_level(
    servers: dict, queries: dict[str, list[str]], clients: int, args: argparse.Namespace
) -> tuple[dict, dict]:
    """Both servers at one concurrency, alternating ``--repeats`` times; the best run of each (noisy shared CPUs)."""
    row: dict = {"clients": clients}
    seen: dict = {}
    for _ in range(args.repeats):
        for role in ROLES:
            mine = queries[role]
            asyncio.run(drive(servers[role].url, mine[: 2 * clients], clients, args.max_seconds))  # warm-up
            pid = servers[role].process.pid
            cpu_before = cpu_seconds(pid)
            latencies, scores, wall = asyncio.run(drive(servers[role].url, mine, clients, args.max_seconds))
            summary = summarize(latencies, wall)
            summary["server_cpu_ms_per_req"] = (cpu_seconds(pid) - cpu_before) * 1000 / len(latencies)
            if role not in row or summary["req_per_s"] > row[role]["req_per_s"]:
                row[role] = summary
            seen[role] = scores
    row["throughput_ratio"] = row["themis"]["req_per_s"] / row["baseline"]["req_per_s"]
    return row, seen


def print_row(row: dict) -> None:
    b, t = row["baseline"], row["themis"]
    print(
        f"clients={row['clients']:>3}  baseline {b['req_per_s']:7.1f} req/s p50 {b['p50_ms']:7.1f} ms "
        f"p99 {b['p99_ms']:7.1f} ms | themis {t['req_per_s']:7.1f} req/s p50 {t['p50_ms']:7.1f} ms "
        f"p99 {t['p99_ms']:7.1f} ms | throughput x{row['throughput_ratio']:.2f}, p99 x{b['p99_ms'] / t['p99_ms']:.2f} "
        f"lower, server CPU/request {b['server_cpu_ms_per_req']:.1f} -> {t['server_cpu_ms_per_req']:.1f} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()
