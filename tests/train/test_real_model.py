"""``themis train`` from a real pretrained backbone (SmolLM2-135M-Instruct, tied embeddings, ChatML template that
injects its own system prompt): 2 steps full and with LoRA, exported as a one-label seq-cls model that ``themis
score`` and ``themis serve`` load and that follows vLLM's loader conventions, scoring exactly what training saw."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.torch import load_file
from transformers import AutoConfig

from tests.serve.conftest import LiveServer
from tests.serve.test_app import client

from themis_rm.criteria import load_pack_toml
from themis_rm.scoring import Scorer
from themis_rm.serve.service import RewardService
from themis_rm.serve.settings import ServeSettings
from themis_rm.train.checkpoint import list_checkpoints
from themis_rm.train.config import LoraConfig, TrainConfig
from themis_rm.train.data import load_training_pairs
from themis_rm.train.loop import run_training

from .synthetic import criteria_pairs, write_jsonl
from .test_export import _checkpoint_model, _scorer_rewards, _training_rewards, model_tokenizer

pytestmark = pytest.mark.real_model
LORA = dict(lora_r=4, lora_target_modules="q_proj,v_proj")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-train")
    return write_jsonl(root / "train.jsonl", criteria_pairs(8, seed=3))


@pytest.fixture(scope="module", params=["full", "lora"])
def trained(request, real_lm_dir, data, short_pack_path, tmp_path_factory):
    settings = {
        "model": str(real_lm_dir),
        "data": str(data),
        "output": str(tmp_path_factory.mktemp(f"real-{request.param}") / "run"),
        "prompts": str(short_pack_path),
        "batch_size": 4,
        "micro_batch_size": 2,
        "max_length": 192,
        "lr": 1e-4,
        "min_lr": 1e-5,
        "warmup_ratio": 0.0,
        "epochs": 1,
        "save_every": 2,
        **(LORA if request.param == "lora" else {}),
    }
    summary = run_training(TrainConfig().with_overrides(settings))
    return request.param, summary


def test_two_steps_export_a_seqcls_model_that_vllm_and_themis_load(trained, real_lm_dir):
    _, summary = trained
    assert summary.steps == 2
    config = AutoConfig.from_pretrained(summary.output)  # what vLLM's loader reads too
    assert config.architectures == ["LlamaForSequenceClassification"] and config.num_labels == 1
    assert config.pad_token_id is not None and config.tie_word_embeddings
    keys = set(load_file(summary.output / "model.safetensors"))
    assert "score.weight" in keys and not any(k.startswith("lm_head") or "lora" in k for k in keys)  # vLLM's layout
    base = load_file(real_lm_dir / "model.safetensors")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not np.array_equal(load_file(summary.output / "model.safetensors")[name].numpy(), base[name].numpy())


def test_exported_scores_equal_the_training_forward_and_the_server(trained, real_lm_dir, data, short_pack_path):
    kind, summary = trained
    pack = load_pack_toml(short_pack_path)
    pairs = load_training_pairs(data, pack=lambda: pack).rows[:4]
    model = _checkpoint_model(
        real_lm_dir, list_checkpoints(summary.output)[-1], LoraConfig(**LORA) if kind == "lora" else None
    )
    ours = _training_rewards(model, pairs, model_tokenizer(real_lm_dir), pack)
    exported = _scorer_rewards(summary.output, pairs, pack)
    np.testing.assert_allclose(exported.chosen, ours.chosen, atol=1e-4)
    np.testing.assert_allclose(exported.rejected, ours.rejected, atol=1e-4)

    scorer = Scorer.from_pretrained(str(summary.output), max_length=256, prompts=pack)
    settings = ServeSettings(model=str(summary.output), max_length=256)
    server = LiveServer(RewardService(scorer, settings), settings).start()
    try:
        items = [{"prompt": "Write is_even(n).", "response": "def is_even(n):\n    return n % 2 == 0"}]
        with client(server) as http:
            served = http.post("/v1/rewards", json={"items": items}).json()["results"][0]["scores"]["none"]
    finally:
        server.stop()
    assert served == pytest.approx(scorer.score([items[0]["prompt"]], [items[0]["response"]])[0], abs=1e-4)
