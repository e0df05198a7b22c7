"""Export: a standard one-label seq-cls model whose Scorer scores equal the training model's rewards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import PartialState
from safetensors.torch import load_file

from themis_rm.criteria import load_pack_toml
from themis_rm.errors import ThemisInputError
from themis_rm.pairs import PreferencePair
from themis_rm.render import ChatRenderer
from themis_rm.scoring import Scorer
from themis_rm.train.batching import PairCollator
from themis_rm.train.checkpoint import list_checkpoints
from themis_rm.train.config import LoraConfig, LossConfig
from themis_rm.train.data import SystemPrompts, load_training_pairs
from themis_rm.train.evaluate import evaluate
from themis_rm.train.export import ExportError, export_state_dict
from themis_rm.train.loop import run_training
from themis_rm.train.model import LM_HEAD_FILE, apply_lora, load_backbone

from .synthetic import criteria_pairs, write_jsonl


@pytest.fixture(scope="module")
def pack(short_pack_path):
    return load_pack_toml(short_pack_path)


def _checkpoint_model(base, checkpoint, lora: LoraConfig | None = None):
    """The training model exactly as the loop held it at the end: base architecture + the checkpoint's weights."""
    model = load_backbone(str(base), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig())
    if lora is not None:
        model = apply_lora(model, lora)
    model.load_state_dict(load_file(checkpoint / "model.safetensors"), strict=False)
    return model.eval()


def _training_rewards(model, pairs, tokenizer, pack):
    collator = PairCollator(
        ChatRenderer(tokenizer, 256), SystemPrompts(pack, seed=0), tokenizer.pad_token_id, evaluation=True
    )
    return evaluate(model, pairs, collator, PartialState(), batch_size=3)


def _scorer_rewards(run_dir, pairs, pack):
    scorer = Scorer.from_pretrained(str(run_dir), dtype="fp32", device="cpu", max_length=256, prompts=pack)
    as_pairs = [PreferencePair(p.id, p.prompt, p.chosen, p.rejected, p.aspect) for p in pairs]
    return scorer.score_pairs(as_pairs, criteria="aspect")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_base_dir, short_pack_path, pack):
    """Four steps on criteria pairs, with a final resumable checkpoint and eval pairs."""
    from themis_rm.train.config import TrainConfig

    root = tmp_path_factory.mktemp("export-run")
    data = write_jsonl(root / "train.jsonl", criteria_pairs(32, seed=0))
    evaluation = write_jsonl(root / "eval.jsonl", criteria_pairs(10, seed=5))
    settings = {
        "model": str(tiny_base_dir),
        "data": str(data),
        "eval_data": str(evaluation),
        "output": str(root / "run"),
        "prompts": str(short_pack_path),
        "batch_size": 8,
        "micro_batch_size": 4,
        "max_length": 256,
        "lr": 3e-3,
        "min_lr": 1e-3,
        "warmup_ratio": 0.0,
        "save_every": 4,
    }
    summary = run_training(TrainConfig().with_overrides(settings))
    pairs = load_training_pairs(evaluation, pack=lambda: pack).rows
    return summary, pairs


def test_export_is_a_standard_one_label_seqcls_model_without_lm_head(trained):
    summary, _ = trained
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(summary.output)
    assert config.architectures == ["Qwen3ForSequenceClassification"] and config.num_labels == 1
    assert config.pad_token_id is not None and config.use_cache is False
    AutoModelForSequenceClassification.from_pretrained(summary.output)  # loads without missing keys
    keys = set(load_file(summary.output / "model.safetensors"))
    assert "score.weight" in keys and not any(k.startswith("lm_head") for k in keys)
    assert (summary.output / LM_HEAD_FILE).is_file() and (summary.output / "tokenizer.json").is_file()


def test_exported_scores_equal_the_training_models_rewards(trained, tiny_base_dir, qwen_tokenizer, pack):
    summary, pairs = trained
    model = _checkpoint_model(tiny_base_dir, list_checkpoints(summary.output)[-1])
    assert model.score.weight.abs().max() > 0  # trained, not the zero init
    ours = _training_rewards(model, pairs, qwen_tokenizer, pack)
    exported = _scorer_rewards(summary.output, pairs, pack)
    np.testing.assert_allclose(exported.chosen, ours.chosen, atol=1e-5)
    np.testing.assert_allclose(exported.rejected, ours.rejected, atol=1e-5)
    assert summary.eval_metrics["eval/margin"] == pytest.approx(float(np.mean(ours.chosen - ours.rejected)), abs=1e-5)


def test_pm_stage_continues_from_the_export_with_its_head_and_lm_head(trained):
    summary, _ = trained
    model = load_backbone(str(summary.output), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig())
    exported = load_file(summary.output / "model.safetensors")
    assert torch.equal(model.score.weight, exported["score.weight"])
    assert torch.equal(model.lm_head.weight, load_file(summary.output / LM_HEAD_FILE)["weight"])


def test_seqcls_start_without_lm_head_needs_lm_weight_zero(tiny_model_dir):
    with pytest.raises(ThemisInputError, match="--lm-weight 0"):
        load_backbone(str(tiny_model_dir), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig())
    model = load_backbone(
        str(tiny_model_dir), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig(lm_weight=0.0)
    )
    assert model.lm_head is None and model.score.weight.abs().max() > 0


def test_tied_embeddings_export_without_sidecar_and_retie_on_reload(tiny_tied_base_dir, qwen_tokenizer, tmp_path):
    model = load_backbone(str(tiny_tied_base_dir), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig())
    assert model.lm_head.weight is model.get_input_embeddings().weight
    state = {"score.weight": torch.ones(1, 32), **{f"model.{k}": v for k, v in model.decoder.state_dict().items()}}
    out = export_state_dict(state, model.config, qwen_tokenizer, tmp_path / "tied", torch.float32)
    assert not (out / LM_HEAD_FILE).exists()
    reloaded = load_backbone(str(out), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig())
    assert reloaded.lm_head.weight is reloaded.get_input_embeddings().weight


def test_key_mismatch_is_an_error_naming_the_keys(tiny_base_dir, qwen_tokenizer, tmp_path):
    model = load_backbone(str(tiny_base_dir), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig())
    state = {f"model.{k}": v for k, v in model.decoder.state_dict().items()}
    with pytest.raises(ExportError, match=r"missing \['score.weight'\]"):
        export_state_dict(state, model.config, qwen_tokenizer, tmp_path / "a", torch.float32)
    state.update({"score.weight": torch.zeros(1, 64), "value_head.weight": torch.zeros(1, 64)})
    with pytest.raises(ExportError, match=r"unexpected.*value_head\.weight"):
        export_state_dict(state, model.config, qwen_tokenizer, tmp_path / "b", torch.float32)


def test_lora_training_exports_merged_weights_with_equal_scores(tiny_base_dir, small_config, pack, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", criteria_pairs(16, seed=1))
    lora = dict(lora_r=4, lora_target_modules="q_proj,v_proj")
    fast = dict(micro_batch_size=8, lr=1e-2, min_lr=1e-3, save_every=2)
    summary = run_training(small_config(data, output=str(tmp_path / "lora"), **fast, **lora))
    exported = load_file(summary.output / "model.safetensors")
    assert not any("lora" in k for k in exported)
    base = load_file(tiny_base_dir / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(exported[key], base[key])  # adapters merged in
    assert torch.equal(exported["model.layers.0.mlp.up_proj.weight"], base["model.layers.0.mlp.up_proj.weight"])
    pairs = load_training_pairs(data, pack=lambda: pack).rows[:6]
    model = _checkpoint_model(tiny_base_dir, list_checkpoints(summary.output)[-1], LoraConfig(**lora))
    ours = _training_rewards(model, pairs, model_tokenizer(tiny_base_dir), pack)
    np.testing.assert_allclose(_scorer_rewards(summary.output, pairs, pack).chosen, ours.chosen, atol=1e-5)


def model_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
