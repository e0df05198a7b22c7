"""Scoring throughput: the reference protocol vs themis-rm's padded and shared-prefix engines, side by side.

Workloads (real code from ``shared/data/pairs``):

* ``crb``: CodeRewardBench-shaped — each pair under its own aspect's official criterion prompt, chosen and rejected;
* ``bon16``: best-of-16 — 16 candidate responses per prompt under the Functional_Correctness prompt.

Methods, all at the same dtype on the same model, timed alternately in one process (best of ``--repeats``):

* ``reference``: the authors' protocol (REFERENCE-NOTES §1.3–1.4, §2): dataset order, fixed batches of 8, padded,
  whole-string right truncation; for pairs, chosen and rejected as two separate forwards;
* ``padded``: themis-rm's length-sorted token-budget batches (``--engine padded``);
* ``prefix``: themis-rm's shared-prefix engine (``--engine prefix``), cold: its kept system-prompt states are
  cleared before every timed run, so each run computes every block it needs at least once;
* ``themis bench`` (``crb`` only, ``--with-bench-job``): the whole ``themis bench`` job on the same pairs written to
  a JSONL file — reading, validation, scoring with the default ``--engine auto``, checkpoints, parquet and JSON
  outputs — timed from the call to its return.

MFU (with ``--peak-tflops``) counts 2 × non-embedding parameters FLOPs per token computed (attention scores are
left out, so it is a lower bound) over the method's wall time.

    # CPU, tiny random model (docs/benchmarks.md)
    THEMIS_SHARED=../shared python benchmarks/bench_scoring.py --pairs-per-file 24 --hidden 128 --layers 4 \\
        --with-bench-job
    # GPU, random-initialised Qwen3-shaped models in bf16 (H100/H200 dense bf16 peak: 989 TFLOP/s)
    python benchmarks/bench_scoring.py --device cuda --dtype bf16 --shape qwen3-0.6b --peak-tflops 989
    python benchmarks/bench_scoring.py --device cuda --dtype bf16 --shape qwen3-8b --peak-tflops 989
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from themis_rm.packs import load_prompt_pack
from themis_rm.pairs import ScoreRequest, load_pairs
from themis_rm.render import build_messages
from themis_rm.scoring import Scorer, load_reward_model
from themis_rm.scoring.models import LoadedModel, resolve_attention, resolve_dtype
from themis_rm.tiny import QWEN3_SHAPES, build_tiny_reward_model, build_tokenizer, tiny_config


def reference_scores(loaded, requests: list[ScoreRequest], max_length: int, batch_size: int = 8):
    """Rewards and padded tokens of the reference protocol over requests in dataset order."""
    tokenizer, model = loaded.tokenizer, loaded.model
    rewards, padded = [], 0
    with torch.inference_mode():
        for start in range(0, len(requests), batch_size):
            chunk = requests[start : start + batch_size]
            texts = [
                tokenizer.apply_chat_template(build_messages(r.prompt, r.response, r.system), tokenize=False)
                for r in chunk
            ]
            encoded = tokenizer(texts, return_tensors="pt", truncation=True, max_length=max_length, padding=True)
            padded += encoded["input_ids"].numel()
            logits = model(**encoded.to(loaded.device)).logits
            rewards.append(logits[:, 0].float().cpu().numpy())
    return np.concatenate(rewards), padded


def load_bench_pairs(shared: Path, pairs_per_file: int):
    """The first ``pairs_per_file`` pairs of each file in ``shared/data/pairs``, a multiple of 8 in all."""
    pairs = []
    for path in sorted((shared / "data" / "pairs").glob("*.jsonl")):
        pairs += load_pairs(path).rows[:pairs_per_file]
    return pairs[: len(pairs) // 8 * 8]


def pair_requests(pairs, pack) -> list[ScoreRequest]:
    """The reference's order: per batch of 8 pairs, the chosen batch then the rejected batch."""
    requests = []
    for start in range(0, len(pairs), 8):
        chunk = pairs[start : start + 8]
        systems = [pack.eval_prompt(pack.resolve(p.aspect)) for p in chunk]
        requests += [ScoreRequest(p.prompt, p.chosen, s) for p, s in zip(chunk, systems, strict=True)]
        requests += [ScoreRequest(p.prompt, p.rejected, s) for p, s in zip(chunk, systems, strict=True)]
    return requests


def best_of_n_requests(pairs, pack, n_prompts: int, n: int, seed: int = 0) -> list[ScoreRequest]:
    """``n`` candidates per prompt drawn from the pool of real responses (content does not change the cost)."""
    rng = random.Random(seed)
    pool = [r for p in pairs for r in (p.chosen, p.rejected)]
    system = pack.eval_prompt(pack.resolve("Functional_Correctness"))
    return [ScoreRequest(p.prompt, rng.choice(pool), system) for p in pairs[:n_prompts] for _ in range(n)]


def bench_job_seconds(pairs, model_dir: Path, pack_path: Path, max_length: int, work: Path) -> tuple[float, int]:
    """Wall seconds of one whole ``themis bench`` run over ``pairs`` (fresh output directory) and pairs scored."""
    from themis_rm.bench.run import BenchConfig, run_bench

    data = work / "pairs.jsonl"
    if not data.exists():
        fields = ("id", "prompt", "chosen", "rejected", "aspect", "language", "subset")
        rows = [{field: getattr(pair, field) for field in fields} for pair in pairs]
        data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    output = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    result = run_bench(
        BenchConfig(
            model=str(model_dir), data=str(data), output=output, prompt_pack=str(pack_path), max_length=max_length
        )
    )
    return time.perf_counter() - started, result.results["overall"]["total_examples"]


def _run(method: str, requests, loaded, scorers, max_length: int):
    """(rewards, tokens the method computed)."""
    if method == "reference":
        return reference_scores(loaded, requests, max_length)
    scorer = scorers[method]
    if scorer.prefix_engine is not None:
        scorer.prefix_engine.clear_cache()  # cold: no block is taken from an earlier timed run
    before = scorer.engine.stats.padded_tokens
    rewards = scorer.score_requests(requests).rewards
    _synchronize(loaded.device)
    return rewards, scorer.engine.stats.padded_tokens - before


def run_workload(name: str, requests, loaded, scorers, args, unit: int, bench_job=None) -> dict:
    timings: dict[str, list[float]] = {method: [] for method in ("reference", *scorers)}
    results = {}
    for _ in range(args.repeats):
        for method in timings:
            started = time.perf_counter()
            results[method] = _run(method, requests, loaded, scorers, args.max_length)
            timings[method].append(time.perf_counter() - started)
    plain_tokens = results["padded"][1]  # sorted token-budget batches pad almost nothing
    flops_per_token = 2 * _non_embedding_parameters(loaded.model)
    report = {"workload": name, "sequences": len(requests), "units": len(requests) // unit}
    for method, values in timings.items():
        rewards, computed = results[method]
        report[method] = {
            "units_per_s": round(len(requests) / unit / min(values), 2),
            "speedup_vs_reference": round(min(timings["reference"]) / min(values), 2),
            "tokens_computed": int(computed),
            "tokens_vs_plain": round(computed / plain_tokens, 3),
            "max_abs_diff_vs_padded": float(np.abs(rewards - results["padded"][0]).max()),
        }
        if args.peak_tflops:
            report[method]["mfu"] = round(flops_per_token * computed / min(values) / (args.peak_tflops * 1e12), 4)
    if bench_job is not None:
        seconds = [bench_job() for _ in range(args.repeats)]
        best, pairs = min(s for s, _ in seconds), seconds[0][1]
        report["themis bench"] = {
            "units_per_s": round(pairs / best, 2),
            "speedup_vs_reference": round(min(timings["reference"]) / best, 2),
        }
    if unit == 2:  # pairs: does the prefix engine make the reference protocol's decisions?
        order = np.arange(len(requests)).reshape(-1, 16)
        chosen, rejected = order[:, :8].ravel(), order[:, 8:].ravel()
        ours, theirs = results["prefix"][0], results["reference"][0]
        agree = np.mean((ours[chosen] > ours[rejected]) == (theirs[chosen] > theirs[rejected]))
        report["prefix_vs_reference_decision_agreement"] = round(float(agree), 4)
    return report


def build_model(args, work: Path) -> tuple[LoadedModel, Path | None]:
    """The benchmark model: the tiny one saved and reloaded (CPU docs), or a Qwen3-shaped one built in memory."""
    if args.shape == "tiny":
        model_dir = build_tiny_reward_model(work / "rm", hidden_size=args.hidden, num_layers=args.layers)
        return load_reward_model(str(model_dir), dtype=args.dtype, device=args.device), model_dir
    from transformers import Qwen3ForSequenceClassification

    device = torch.device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    attention = resolve_attention("auto", device)
    tokenizer = build_tokenizer()
    config = tiny_config(tokenizer, num_labels=1, **QWEN3_SHAPES[args.shape])
    torch.manual_seed(0)
    with device:  # random init straight on the device: an 8B model never passes through host memory
        model = Qwen3ForSequenceClassification._from_config(config, dtype=dtype, attn_implementation=attention)
    return LoadedModel(model.eval(), tokenizer, device, dtype, attention, args.shape, None), None


def _non_embedding_parameters(model: torch.nn.Module) -> int:
    embedding = model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in model.parameters()) - embedding


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=os.environ.get("THEMIS_SHARED", "../shared"))
    parser.add_argument("--pairs-per-file", type=int, default=24)
    parser.add_argument("--bon-prompts", type=int, default=12)
    parser.add_argument("--shape", choices=["tiny", *QWEN3_SHAPES], default="tiny")
    parser.add_argument("--hidden", type=int, default=128, help="tiny shape only")
    parser.add_argument("--layers", type=int, default=4, help="tiny shape only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak at --dtype, for MFU")
    parser.add_argument("--with-bench-job", action="store_true", help="also time the whole themis bench job (tiny)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON report here")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)

    shared = Path(args.shared)
    pairs = load_bench_pairs(shared, args.pairs_per_file)
    pack_path = shared / "reference" / "themis_system_prompts.json"
    pack = load_prompt_pack(pack_path)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        loaded, model_dir = build_model(args, work)
        scorers = {
            engine: Scorer(loaded, prompts=pack, max_length=args.max_length, engine=engine)
            for engine in ("padded", "prefix")
        }
        bench_job = None
        if args.with_bench_job and model_dir is not None:

            def bench_job():
                return bench_job_seconds(pairs, model_dir, pack_path, args.max_length, work)

        header = {
            "model": f"random {args.shape} Qwen3 seq-cls"
            + (f" (hidden {args.hidden}, {args.layers} layers)" if args.shape == "tiny" else "")
            + f", {args.dtype}, {args.device}"
            + (f", {torch.get_num_threads()} threads" if args.device == "cpu" else ""),
            "max_length": args.max_length,
        }
        crb = pair_requests(pairs, pack)
        bon = best_of_n_requests(pairs, pack, args.bon_prompts, 16)
        reports = [
            run_workload("crb", crb, loaded, scorers, args, unit=2, bench_job=bench_job),
            run_workload("bon16", bon, loaded, scorers, args, unit=16),
        ]
    text = json.dumps({**header, "results": reports}, indent=1)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
