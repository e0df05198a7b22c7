"""Fixtures for the training tests: tiny causal LMs to train from, a short prompt pack, small configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .synthetic import SHORT_PACK_TOML


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core box two OpenMP threads fighting another process run ~8x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """Each in-process run gets its own accelerate state (it is a process-wide singleton that refuses a second
    run with another mixed precision); accelerate's own tests reset it the same way."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory, qwen_tokenizer) -> Path:
    """A random tiny Qwen3 causal LM (hidden 64, 2 layers, 4k vocab) to train reward models from."""
    from themis_rm.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-causal"), tokenizer=qwen_tokenizer)


@pytest.fixture(scope="session")
def tiny_tied_base_dir(tmp_path_factory, qwen_tokenizer) -> Path:
    """The same with tied input/output embeddings (as Qwen3-0.6B)."""
    from themis_rm.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(
        tmp_path_factory.mktemp("tiny-tied"), tokenizer=qwen_tokenizer, hidden_size=32, tie_word_embeddings=True
    )


@pytest.fixture(scope="session")
def short_pack_path(tmp_path_factory) -> Path:
    """A complete prompt pack with one-line criteria: criteria prompts of ~10-50 tokens keep CPU steps fast."""
    path = tmp_path_factory.mktemp("pack") / "short_pack.toml"
    path.write_text(SHORT_PACK_TOML, encoding="utf-8")
    return path


@pytest.fixture
def small_config(tiny_base_dir, short_pack_path, tmp_path):
    """``small_config(data, **overrides)``: a TrainConfig for a few fast CPU steps."""
    from themis_rm.train.config import TrainConfig

    def make(data: Path, **overrides) -> TrainConfig:
        settings = {
            "model": str(tiny_base_dir),
            "data": str(data),
            "output": str(tmp_path / "run"),
            "prompts": str(short_pack_path),
            "batch_size": 8,
            "micro_batch_size": 4,
            "max_length": 256,
            "lr": 1e-3,
            "min_lr": 1e-4,
            "warmup_ratio": 0.0,
            "epochs": 1,
            **overrides,
        }
        return TrainConfig().with_overrides(settings)

    return make
