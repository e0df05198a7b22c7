"""Kill -9 a real training process mid-run at a deterministic crash point, resume it, and get bit-for-bit the
weights of an uninterrupted run.

The model has attention dropout, so every step draws from the torch RNG: a resume that did not restore the RNG
state (or that drew from it while setting up) would train on other dropout masks and end on other weights.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from themis_rm.faults import CRASH_ENV
from themis_rm.train.checkpoint import list_checkpoints
from themis_rm.train.metrics import METRICS_FILE, read_metrics

from .synthetic import operator_pairs, write_jsonl

STEPS = 24  # 2 epochs of 12 steps: the kill lands mid-epoch or across the epoch boundary


@pytest.fixture(scope="module")
def dropout_base_dir(tmp_path_factory, qwen_tokenizer) -> Path:
    """The tiny Qwen3 causal LM with attention dropout: training consumes randomness."""
    from themis_rm.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(
        tmp_path_factory.mktemp("tiny-dropout"), tokenizer=qwen_tokenizer, attention_dropout=0.2
    )


def _command(base: Path, pack: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "themis_rm.train.cli",
        "--model",
        str(base),
        "--data",
        str(data),
        "--output",
        str(output),
        "--prompts",
        str(pack),
        "--batch-size",
        "8",
        "--micro-batch-size",
        "4",
        "--max-length",
        "128",
        "--max-drop-share",  # a fifth of the pairs do not fit at 128 tokens; the test is about resuming
        "0.5",
        "--lr",
        "3e-3",
        "--min-lr",
        "1e-4",
        "--warmup-ratio",
        "0.1",
        "--epochs",
        "2",
        "--save-every",
        "3",
        "--keep-checkpoints",
        "3",
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


CRASH_STEP = 5  # THEMIS_CRASH_AT kills the run after step 5: checkpoint-3 is the last one, steps 4-5 are lost


def _killed_at_a_crash_point(command: list[str]) -> int:
    """Run ``command`` until the deterministic crash point SIGKILLs it (no timing race with a poller)."""
    env = {**_env(), CRASH_ENV: f"train.step:{CRASH_STEP}"}
    return subprocess.run(command, env=env, capture_output=True, timeout=600).returncode


@pytest.mark.slow
def test_sigkilled_run_resumes_to_bitwise_equal_weights(dropout_base_dir, short_pack_path, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", operator_pairs(96, seed=0))
    straight, killed = tmp_path / "straight", tmp_path / "killed"

    done = subprocess.run(_command(dropout_base_dir, short_pack_path, data, straight), env=_env(), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    rc = _killed_at_a_crash_point(_command(dropout_base_dir, short_pack_path, data, killed))
    assert rc == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists()  # it really died before the end
    resumed_at = int(list_checkpoints(killed)[-1].name.split("-")[1])
    assert resumed_at == 3 < CRASH_STEP < STEPS

    resumed = subprocess.run(
        _command(dropout_base_dir, short_pack_path, data, killed, "--resume", "auto"), env=_env(), capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert f"resumed from {resumed_at}" in resumed.stderr.decode().replace("\n", " ")

    expected, got = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), f"{name} differs after resume"
    assert torch.count_nonzero(expected["score.weight"]) > 0

    def losses(run: Path) -> list[tuple[int, float]]:
        return [(r["step"], r["loss/total"]) for r in read_metrics(run / METRICS_FILE) if "loss/total" in r]

    assert losses(killed) == losses(straight)  # the log is cut back to the checkpoint, then continues identically
    assert len(losses(killed)) == STEPS
