"""Scoring throughput: the reference protocol vs themis-rm's padded and shared-prefix engines, side by side.

Workloads (real code from ``shared/data/pairs``):

* ``crb``: CodeRewardBench-shaped — each pair under its own aspect's official criterion prompt, chosen and rejected;
* ``bon16``: best-of-16 — 16 candidate responses per prompt under the Functional_Correctness prompt.

Methods, all fp32 on the same model, timed alternately in one process (best of ``--repeats``):

* ``reference``: the authors' protocol (REFERENCE-NOTES §1.3–1.4, §2): dataset order, fixed batches of 8, padded,
  whole-string right truncation; for pairs, chosen and rejected as two separate forwards;
* ``padded``: themis-rm's length-sorted token-budget batches (``--engine padded``);
* ``prefix``: themis-rm's shared-prefix engine (``--engine prefix``).

    THEMIS_SHARED=../shared python benchmarks/bench_scoring.py --pairs-per-file 24 --hidden 128 --layers 4
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
from themis_rm.tiny import build_tiny_reward_model


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
            rewards.append(model(**encoded).logits[:, 0].float().numpy())
    return np.concatenate(rewards), padded


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


def _run(method: str, requests, loaded, scorers, max_length: int):
    """(rewards, tokens the method computed)."""
    if method == "reference":
        return reference_scores(loaded, requests, max_length)
    stats = scorers[method].engine.stats
    before = stats.padded_tokens
    rewards = scorers[method].score_requests(requests).rewards
    return rewards, stats.padded_tokens - before


def run_workload(name: str, requests, loaded, scorers, max_length: int, repeats: int, unit: int) -> dict:
    timings: dict[str, list[float]] = {method: [] for method in ("reference", *scorers)}
    results = {}
    for _ in range(repeats):
        for method in timings:
            started = time.perf_counter()
            results[method] = _run(method, requests, loaded, scorers, max_length)
            timings[method].append(time.perf_counter() - started)
    plain_tokens = results["padded"][1]  # sorted token-budget batches pad almost nothing
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
    if unit == 2:  # pairs: does the prefix engine make the reference protocol's decisions?
        order = np.arange(len(requests)).reshape(-1, 16)
        chosen, rejected = order[:, :8].ravel(), order[:, 8:].ravel()
        ours, theirs = results["prefix"][0], results["reference"][0]
        agree = np.mean((ours[chosen] > ours[rejected]) == (theirs[chosen] > theirs[rejected]))
        report["prefix_vs_reference_decision_agreement"] = round(float(agree), 4)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=os.environ.get("THEMIS_SHARED", "../shared"))
    parser.add_argument("--pairs-per-file", type=int, default=24)
    parser.add_argument("--bon-prompts", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    shared = Path(args.shared)
    pairs = []
    for path in sorted((shared / "data" / "pairs").glob("*.jsonl")):
        pairs += load_pairs(path).rows[: args.pairs_per_file]
    pairs = pairs[: len(pairs) // 8 * 8]
    pack = load_prompt_pack(shared / "reference" / "themis_system_prompts.json")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_reward_model(Path(tmp) / "rm", hidden_size=args.hidden, num_layers=args.layers)
        loaded = load_reward_model(str(model_dir), dtype="fp32", device="cpu")
    scorers = {
        engine: Scorer(loaded, prompts=pack, max_length=args.max_length, engine=engine)
        for engine in ("padded", "prefix")
    }
    header = {
        "model": f"tiny Qwen3 seq-cls, hidden {args.hidden}, {args.layers} layers, fp32, CPU, "
        f"{torch.get_num_threads()} threads",
        "max_length": args.max_length,
    }
    reports = [
        run_workload("crb", pair_requests(pairs, pack), loaded, scorers, args.max_length, args.repeats, unit=2),
        run_workload(
            "bon16",
            best_of_n_requests(pairs, pack, args.bon_prompts, 16),
            loaded,
            scorers,
            args.max_length,
            args.repeats,
            unit=16,
        ),
    ]
    print(json.dumps({**header, "results": reports}, indent=1))


if __name__ == "__main__":
    main()
