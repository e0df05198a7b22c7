"""Pairs/s of ``themis bench``'s scoring path vs the reference CodeRewardBench protocol, side by side.

Reference protocol (re-created from REFERENCE-NOTES §1.3–1.4): dataset order, fixed batches of 8 pairs, the
chosen batch and the rejected batch as two separate padded forwards, ``tokenizer(text, truncation=True,
padding=True)`` on the templated strings, fp32. Ours: ``Scorer.score_pairs`` — chosen and rejected together,
length-sorted token-budget batches, response-only truncation. Same model, data, prompts and dtype; the two are
timed alternately in one process and the best of ``--repeats`` is kept (the 2-core VM varies by ±30% between runs).

    python benchmarks/bench_protocol.py --pairs-per-file 40 --hidden 128 --layers 4
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from themis_rm.packs import load_prompt_pack
from themis_rm.pairs import load_pairs
from themis_rm.render import build_messages
from themis_rm.scoring import ASPECT, Scorer, load_reward_model
from themis_rm.tiny import build_tiny_reward_model


def reference_protocol(loaded, pairs, systems, max_length: int, batch_size: int = 8) -> tuple[np.ndarray, int]:
    """Scores (chosen − rejected margins) and padded tokens computed, the reference way."""
    tokenizer, model = loaded.tokenizer, loaded.model
    margins, padded_tokens = [], 0
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            chunk_systems = systems[start : start + batch_size]
            rewards = []
            for side in ("chosen", "rejected"):
                texts = [tokenizer.apply_chat_template(build_messages(p.prompt, getattr(p, side), s), tokenize=False)
                         for p, s in zip(chunk, chunk_systems, strict=True)]
                encoded = tokenizer(texts, return_tensors="pt", truncation=True, max_length=max_length, padding=True)
                padded_tokens += encoded["input_ids"].numel()
                rewards.append(model(**encoded).logits[:, 0].float().numpy())
            margins.append(rewards[0] - rewards[1])
    return np.concatenate(margins), padded_tokens


def ours(scorer: Scorer, pairs) -> tuple[np.ndarray, int]:
    before = scorer.engine.stats.padded_tokens
    scores = scorer.score_pairs(pairs, ASPECT)
    return scores.chosen - scores.rejected, scorer.engine.stats.padded_tokens - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=os.environ.get("THEMIS_SHARED", "../shared"))
    parser.add_argument("--pairs-per-file", type=int, default=40)
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
    pack = load_prompt_pack(shared / "reference" / "themis_system_prompts.json")
    systems = [pack.eval_prompt(pack.resolve(p.aspect)) for p in pairs]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_reward_model(Path(tmp) / "rm", hidden_size=args.hidden, num_layers=args.layers)
        loaded = load_reward_model(str(model_dir), dtype="fp32", device="cpu")
    scorer = Scorer(loaded, prompts=pack, max_length=args.max_length, prompt_overflow="truncate")

    timings = {"reference": [], "themis": []}
    for _ in range(args.repeats):
        for name in ("reference", "themis"):
            started = time.perf_counter()
            margins, padded = (reference_protocol(loaded, pairs, systems, args.max_length) if name == "reference"
                               else ours(scorer, pairs))
            timings[name].append(time.perf_counter() - started)
            if name == "reference":
                reference_margins, reference_padded = margins, padded
            else:
                our_margins, our_padded = margins, padded
    best = {name: min(values) for name, values in timings.items()}
    agree = float(np.mean((reference_margins > 0) == (our_margins > 0)))
    result = {
        "pairs": len(pairs),
        "model": f"tiny Qwen3 seq-cls, hidden {args.hidden}, {args.layers} layers, fp32, CPU",
        "max_length": args.max_length,
        "reference_pairs_per_s": round(len(pairs) / best["reference"], 2),
        "themis_pairs_per_s": round(len(pairs) / best["themis"], 2),
        "speedup": round(best["reference"] / best["themis"], 2),
        "reference_padded_tokens": reference_padded,
        "themis_padded_tokens": our_padded,
        "padded_token_ratio": round(our_padded / reference_padded, 3),
        "decision_agreement": round(agree, 4),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
