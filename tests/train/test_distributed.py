"""Two real processes (torchrun, gloo on CPU) train and log exactly what one process with one big micro-batch does.

With the LM loss on (the default λ), this checks the step-level normalisation across processes (pairs and LM
tokens summed over ranks, DDP's gradient averaging undone) and "metrics averaged over micro-batches AND ranks":
the reference logged rank 0's last micro-batch. It also covers the rank-sharded step plan, counters summed over
processes, and the sharded eval.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from themis_rm.train.loop import RUN_FILE
from themis_rm.train.metrics import METRICS_FILE, read_metrics

from .synthetic import operator_pairs, write_jsonl


def _train(common: list[str], micro_batch_size: int, output, processes: int = 1) -> subprocess.CompletedProcess:
    """``themis train`` in a subprocess on CPU; more than one process is launched through torchrun."""
    launcher = [sys.executable, "-m"]
    if processes > 1:
        launcher += ["torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), "-m"]
    command = [*launcher, "themis_rm.cli", "train", *common, "--micro-batch-size", str(micro_batch_size)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*command, "--output", str(output)], env=env, capture_output=True)


@pytest.mark.slow
def test_two_processes_equal_one_process_with_one_big_micro_batch(tiny_base_dir, short_pack_path, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", operator_pairs(32, seed=0))
    held_out = write_jsonl(tmp_path / "eval.jsonl", operator_pairs(9, seed=4))
    common = [
        *("--model", str(tiny_base_dir), "--data", str(data), "--eval-data", str(held_out)),
        *("--prompt-pack", str(short_pack_path), "--batch-size", "8", "--eval-batch-size", "4", "--max-steps", "3"),
        *("--lr", "1e-3", "--min-lr", "1e-4", "--warmup-ratio", "0", "--max-length", "96", "--eval-every", "3"),
        *("--max-drop-share", "1"),  # a quarter of the pairs do not fit at 96 tokens: counted below
    ]
    two = _train(common, 4, tmp_path / "two", processes=2)
    assert two.returncode == 0, two.stderr.decode()[-3000:]
    one = _train(common, 8, tmp_path / "one")
    assert one.returncode == 0, one.stderr.decode()[-3000:]

    runs = {name: json.loads((tmp_path / name / RUN_FILE).read_text()) for name in ("one", "two")}
    assert (runs["two"]["processes"], runs["two"]["grad_accum"]) == (2, 1)
    assert (runs["one"]["processes"], runs["one"]["grad_accum"]) == (1, 1)
    assert runs["two"]["config"]["loss"]["lm_weight"] > 0
    counters = {name: dict(run["counters"]) for name, run in runs.items()}
    assert counters["two"].pop("computed_tokens") <= counters["one"].pop("computed_tokens")  # less padding
    assert counters["two"] == counters["one"]
    assert runs["two"]["counters"]["trained_pairs"] + runs["two"]["counters"].get("dropped_prompt_too_long", 0) == 24

    records = {name: read_metrics(tmp_path / name / METRICS_FILE) for name in ("one", "two")}
    assert len(records["two"]) == len(records["one"]) == 4  # 3 steps + 1 eval
    for mine, theirs in zip(records["two"], records["one"], strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            if key != "train/tokens_per_s" and value is not None:
                # float32 sums over other padded shapes: ~2e-5 relative apart on some CPUs after three steps
                assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    weights_two, weights_one = (
        load_file(tmp_path / "two/model.safetensors"),
        load_file(tmp_path / "one/model.safetensors"),
    )
    for name, value in weights_one.items():
        assert torch.allclose(weights_two[name], value, atol=5e-5), name
