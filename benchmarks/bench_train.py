"""Training throughput: our loop vs a faithful re-creation of the reference trainer's batching, same tiny model.

Workload: real code preference pairs (the first ``--pairs-per-file`` of each file in ``shared/data/pairs``), each
under a criteria system prompt sampled exactly as training samples them (official pack, 15/60/25), in a random
order. Both methods run one epoch with ``--micro-batch-size`` pairs per optimizer step, the same loss
(BT + 0.25·LM on the chosen response + 0.001·center) and the same LM-loss kernel (chunked cross-entropy: liger
fails on CPU), so the difference is the batching:

* ``reference`` (REFERENCE-NOTES §4.1–4.2): pairs tokenised once up front, shuffled, chosen batch and rejected batch
  each right-padded to their own longest row and run as **two forwards**, eight ``.item()`` syncs per step;
* ``themis`` (``themis_rm.train.run_training``): length-grouped steps, chosen and rejected of all pairs in **one**
  padded forward, rendering in the loop (prompts are re-sampled every epoch), one reduction per logging window;
* ``themis-packed``: the same with ``--packing on`` (padding-free rows; on CPU sdpa builds a dense block mask, so
  this is expected to lose here and win only with flash-attention varlen kernels on a GPU).

Tokens/s counts real (non-pad) tokens of chosen + rejected per second of the training loop. Methods are timed
alternately in one process, best of ``--repeats`` (the 2-core VM varies ±30% between runs).

    THEMIS_SHARED=../shared python benchmarks/bench_train.py --pairs-per-file 16 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from themis_rm.criteria import load_pack_json
from themis_rm.errors import PromptTooLongError, ThemisInputError
from themis_rm.pairs import ScoreRequest
from themis_rm.render import ChatRenderer
from themis_rm.tiny import build_tiny_causal_lm, build_tokenizer
from themis_rm.train.config import LossConfig, TrainConfig
from themis_rm.train.data import SystemPrompts, load_training_pairs
from themis_rm.train.loop import run_training
from themis_rm.train.loss import chunked_cross_entropy, magnitude_penalty
from themis_rm.train.model import load_backbone

LM_WEIGHT, MAG_WEIGHT = 0.25, 0.001


def write_workload(shared: Path, per_file: int, out: Path, seed: int) -> Path:
    rows = []
    for path in sorted((shared / "data" / "pairs").glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:per_file]
        rows += [{k: r[k] for k in ("id", "prompt", "chosen", "rejected", "aspect")} for r in lines]
    random.Random(seed).shuffle(rows)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def reference_epoch(
    base: Path, pairs, prompts: SystemPrompts, tokenizer, max_length: int, micro: int, accumulation: int, seed: int
):
    """The reference trainer's loop shape on our renderer's ids; returns (real tokens, padded tokens, seconds)."""
    model = load_backbone(str(base), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig()).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    renderer = ChatRenderer(tokenizer, max_length)
    encoded = []  # tokenised once, before training (system prompts fixed at dataset build time)
    for i, pair in enumerate(pairs):
        system = prompts.training(pair, i, 0)
        try:
            c, r = renderer.render_many([ScoreRequest(pair.prompt, s, system) for s in (pair.chosen, pair.rejected)])
        except PromptTooLongError:  # the reference crashes here; skip like our loop's counted drop
            continue
        encoded.append((c, r))
    order = list(range(len(encoded)))
    random.Random(seed).shuffle(order)
    real = padded = 0
    started = time.perf_counter()
    usable = len(order) - len(order) % (micro * accumulation)
    if not usable:
        raise ThemisInputError(
            f"--max-length {max_length}: only {len(encoded)} of {len(pairs)} pairs fit, fewer than one step of "
            f"{micro * accumulation}; raise --max-length or --pairs-per-file, or lower --batch-size"
        )
    for k, start in enumerate(range(0, usable, micro)):
        chunk = [encoded[i] for i in order[start : start + micro]]
        chosen_ids, chosen_mask = _right_pad([c.input_ids for c, _ in chunk], tokenizer.pad_token_id)
        rejected_ids, rejected_mask = _right_pad([r.input_ids for _, r in chunk], tokenizer.pad_token_id)
        real += int(chosen_mask.sum() + rejected_mask.sum())
        padded += chosen_ids.numel() + rejected_ids.numel()
        hidden_c = model.decoder(input_ids=chosen_ids, attention_mask=chosen_mask).last_hidden_state
        hidden_r = model.decoder(input_ids=rejected_ids, attention_mask=rejected_mask).last_hidden_state
        rows = torch.arange(len(chunk))
        rc = F.linear(hidden_c[rows, chosen_mask.sum(1) - 1], model.score.weight).squeeze(-1)
        rr = F.linear(hidden_r[rows, rejected_mask.sum(1) - 1], model.score.weight).squeeze(-1)
        positions = [(k, p) for k, (c, _) in enumerate(chunk) for p in range(c.prefix_len, len(c.input_ids))]
        index = torch.tensor([(k, p - 1) for k, p in positions])
        targets = torch.tensor([chunk[k][0].input_ids[p] for k, p in positions])
        lm = chunked_cross_entropy(hidden_c[index[:, 0], index[:, 1]], model.lm_head, targets) / len(targets)
        bt = -F.logsigmoid(rc - rr).mean()
        mag = magnitude_penalty(rc, rr, "center").mean()
        loss = bt + LM_WEIGHT * lm + MAG_WEIGHT * mag
        (loss / accumulation).backward()
        if (k + 1) % accumulation == 0:
            optimizer.step()
            optimizer.zero_grad()
        _ = [t.item() for t in (loss, bt, lm, mag, rc.mean(), rr.mean(), (rc - rr).mean(), (rc > rr).float().mean())]
    return real, padded, time.perf_counter() - started


def _right_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


def themis_epoch(
    base: Path, data: Path, prompts_path: Path, out: Path, max_length: int, micro: int, batch: int, packing: str
):
    """One epoch of ``run_training``; tokens/s over the whole loop (one logging window)."""
    n_pairs = sum(1 for _ in data.open())
    steps = n_pairs // batch
    config = TrainConfig().with_overrides(
        {
            "model": str(base),
            "data": str(data),
            "output": str(out),
            "prompts": str(prompts_path),
            "batch_size": batch,
            "micro_batch_size": micro,
            "max_length": max_length,
            "packing": packing,
            "lm_weight": LM_WEIGHT,
            "magnitude_weight": MAG_WEIGHT,
            "log_every": steps,
            "mixed_precision": "no",
        }
    )
    summary = run_training(config)
    return summary.metrics["train/tokens_per_s"], summary.counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs-per-file", type=int, default=16)
    parser.add_argument("--micro-batch-size", type=int, default=4, help="pairs per forward")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per optimizer step (accumulation)")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-packed", action="store_true", help="leave out themis-packed (slow on CPU)")
    parser.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        results, extra, n_pairs = run_methods(args, Path(tmp))
    best = {name: max(values) for name, values in results.items()}
    print(
        f"{n_pairs} pairs, micro-batch {args.micro_batch_size}, batch {args.batch_size}, max_length "
        f"{args.max_length}, hidden {args.hidden} x {args.layers} layers, {args.threads} thread(s), "
        f"best of {args.repeats}"
    )
    for name, rate in best.items():
        efficiency = extra[f"{name}_padding_efficiency"]
        print(
            f"{name:>14}: {rate:8.0f} tok/s  {rate / best['reference']:.2f}x reference  "
            f"padding efficiency {efficiency:.3f}  (all runs: {[round(v) for v in results[name]]})"
        )
    if args.json:
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "tokens_per_s": results, "best": best, **extra}
        args.json.write_text(json.dumps(payload, indent=2, default=str))


def run_methods(args: argparse.Namespace, tmp: Path) -> tuple[dict[str, list[float]], dict[str, object], int]:
    """Every method once per repeat, alternating, on the same base model and pairs."""
    shared = Path(os.environ.get("THEMIS_SHARED", "../shared"))
    prompts_path = shared / "reference" / "themis_system_prompts.json"
    pack = load_pack_json(prompts_path)
    tokenizer = build_tokenizer("qwen3")
    base = build_tiny_causal_lm(tmp / "base", tokenizer=tokenizer, hidden_size=args.hidden, num_layers=args.layers)
    data = write_workload(shared, args.pairs_per_file, tmp / "pairs.jsonl", seed=0)
    pairs = load_training_pairs(data, pack=lambda: pack).rows
    prompts = SystemPrompts(pack, seed=0)
    accumulation = args.batch_size // args.micro_batch_size
    methods = (("themis", "off"),) if args.skip_packed else (("themis", "off"), ("themis-packed", "on"))
    results: dict[str, list[float]] = {"reference": [], **{name: [] for name, _ in methods}}
    extra: dict[str, object] = {}
    for repeat in range(args.repeats):
        real, padded, seconds = reference_epoch(
            base, pairs, prompts, tokenizer, args.max_length, args.micro_batch_size, accumulation, seed=repeat
        )
        results["reference"].append(real / seconds)
        extra["reference_padding_efficiency"] = real / padded
        for name, packing in methods:
            rate, counters = themis_epoch(
                base,
                data,
                prompts_path,
                tmp / f"{name}-{repeat}",
                args.max_length,
                args.micro_batch_size,
                args.batch_size,
                packing,
            )
            results[name].append(rate)
            extra[f"{name}_counters"] = counters
            extra[f"{name}_padding_efficiency"] = counters["real_tokens"] / counters["computed_tokens"]
    return results, extra, len(pairs)


if __name__ == "__main__":
    main()
