"""Adapters: custom scalar heads and causal-LM log-prob rewards equal a hand computation, batched or not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

from themis_rm.errors import ThemisInputError
from themis_rm.pairs import ScoreRequest
from themis_rm.render import ChatRenderer
from themis_rm.scoring import Scorer, ScoringEngine
from themis_rm.scoring.adapters import ADAPTERS, HeadSpec, load_adapter


@pytest.fixture(scope="module")
def config(tiny_model_dir) -> Qwen3Config:
    """The tiny Qwen3 shape of ``tiny.py`` (hidden size 64, 2 layers), for backbones and LMs built here."""
    return Qwen3Config.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def sequences(qwen_tokenizer) -> list[list[int]]:
    """Rendered conversations of different lengths (so the batch is right-padded), some with a system turn."""
    requests = [
        ScoreRequest("Write is_even(n).", "def is_even(n):\n    return n % 2 == 0"),
        ScoreRequest("Sort a list.", "sorted(xs)", system="Judge runtime efficiency."),
        ScoreRequest(
            [
                {"role": "user", "content": "Reverse s."},
                {"role": "assistant", "content": "s[::-1]"},
                {"role": "user", "content": "In place, for a list?"},
            ],
            "xs.reverse()  # in place, O(n) time and O(1) extra memory\nreturn None",
        ),
        ScoreRequest("Hi", "ok"),
    ]
    ids = [r.input_ids for r in ChatRenderer(qwen_tokenizer).render_many(requests)]
    assert len({len(x) for x in ids}) == len(ids)
    return ids


@pytest.fixture(scope="module")
def value_head_dir(tmp_path_factory, qwen_tokenizer, config):
    """A tiny ``Qwen3Model`` saved with ``save_pretrained`` plus ``v_head.weight`` in its own safetensors file."""
    torch.manual_seed(0)
    backbone = Qwen3Model(config).eval()
    v_head = torch.randn(1, config.hidden_size)
    path = tmp_path_factory.mktemp("value-head")
    backbone.save_pretrained(path)
    qwen_tokenizer.save_pretrained(path)
    save_file({"v_head.weight": v_head}, str(path / "v_head.safetensors"))
    return path, backbone, v_head


@pytest.fixture(scope="module")
def mlp_head_dir(tmp_path_factory, qwen_tokenizer, config):
    """A reward checkpoint in one safetensors file: backbone under ``model.`` plus an MLP head ``score.0/2``."""
    torch.manual_seed(1)
    backbone = Qwen3Model(config).eval()
    head = {
        "score.0.weight": torch.randn(16, config.hidden_size),
        "score.0.bias": torch.randn(16),
        "score.2.weight": torch.randn(1, 16),
        "score.2.bias": torch.randn(1),
    }
    path = tmp_path_factory.mktemp("mlp-head")
    tensors = {f"model.{k}": v.contiguous() for k, v in backbone.state_dict().items()} | head
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    backbone.config.save_pretrained(path)
    qwen_tokenizer.save_pretrained(path)
    return path, backbone, head


@pytest.fixture(scope="module")
def causal_lm_dir(tmp_path_factory, qwen_tokenizer, config):
    torch.manual_seed(2)
    lm = Qwen3ForCausalLM(config).eval()
    path = tmp_path_factory.mktemp("causal-lm")
    lm.save_pretrained(path)
    qwen_tokenizer.save_pretrained(path)
    return path, lm


def _hidden(backbone, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return backbone(input_ids=torch.tensor([ids])).last_hidden_state[0]


def _engine_rewards(loaded, sequences, one_at_a_time: bool = False) -> np.ndarray:
    engine = ScoringEngine(loaded.model, loaded.tokenizer.pad_token_id, max_batch_size=1 if one_at_a_time else None)
    return engine.score(sequences)


def test_value_head_reads_each_rows_last_real_token(value_head_dir, sequences):
    path, backbone, v_head = value_head_dir
    loaded = load_adapter(str(path), "head", spec={"weights": ["v_head.weight"]}, dtype="fp32", device="cpu")
    expected = np.array([float(_hidden(backbone, ids)[-1] @ v_head[0]) for ids in sequences])
    batched = _engine_rewards(loaded, sequences)
    assert np.abs(batched - expected).max() <= 1e-4
    assert np.abs(batched - _engine_rewards(loaded, sequences, one_at_a_time=True)).max() <= 1e-4


def test_head_adapter_on_a_seqcls_checkpoint_equals_the_seqcls_adapter(tiny_model_dir, sequences):
    seqcls = load_adapter(str(tiny_model_dir), dtype="fp32", device="cpu")
    head = load_adapter(str(tiny_model_dir), "head", spec={"weights": "score.weight"}, dtype="fp32", device="cpu")
    assert np.abs(_engine_rewards(head, sequences) - _engine_rewards(seqcls, sequences)).max() <= 1e-4


def test_named_token_pooling_reads_its_last_occurrence(value_head_dir, sequences, qwen_tokenizer):
    path, backbone, v_head = value_head_dir
    spec = {"pooling": {"token": "<|im_start|>"}}
    loaded = load_adapter(str(path), "head", spec=spec, dtype="fp32", device="cpu")
    token_id = qwen_tokenizer.convert_tokens_to_ids("<|im_start|>")
    expected = []
    for ids in sequences:
        last = max(i for i, t in enumerate(ids) if t == token_id)
        assert 0 < last < len(ids) - 1  # not the first occurrence, not the last token
        expected.append(float(_hidden(backbone, ids)[last] @ v_head[0]))
    assert np.abs(_engine_rewards(loaded, sequences) - np.array(expected)).max() <= 1e-4


def test_row_without_the_pooling_token_is_an_error(value_head_dir, qwen_tokenizer):
    loaded = load_adapter(str(value_head_dir[0]), "head", spec={"token": "<think>"}, dtype="fp32", device="cpu")
    with_token = qwen_tokenizer.encode("x <think> y", add_special_tokens=False)
    without = qwen_tokenizer.encode("no such token here", add_special_tokens=False)
    with pytest.raises(ThemisInputError, match=r"rows \[1\] have no token id"):
        _engine_rewards(loaded, [with_token, without], one_at_a_time=False)


def test_mlp_head_from_a_merged_checkpoint_and_a_json_spec(mlp_head_dir, sequences, tmp_path):
    path, backbone, head = mlp_head_dir
    spec_path = tmp_path / "head.json"
    spec_path.write_text(
        json.dumps(
            {
                "head": "mlp",
                "weights": ["score.0.weight", "score.2.weight"],
                "biases": ["score.0.bias", "score.2.bias"],
                "activation": "relu",
            }
        )
    )
    loaded = load_adapter(str(path), "head", spec=str(spec_path), dtype="fp32", device="cpu")
    expected = []
    for ids in sequences:
        h = torch.relu(_hidden(backbone, ids)[-1] @ head["score.0.weight"].T + head["score.0.bias"])
        expected.append(float(h @ head["score.2.weight"][0] + head["score.2.bias"][0]))
    batched = _engine_rewards(loaded, sequences)
    assert np.abs(batched - np.array(expected)).max() <= 1e-4
    assert np.abs(batched - _engine_rewards(loaded, sequences, one_at_a_time=True)).max() <= 1e-4


def test_missing_head_tensor_error_names_tensor_and_file(value_head_dir):
    with pytest.raises(ThemisInputError, match=r"v_head\.wieght.*v_head\.safetensors.*nearest names: \['v_head"):
        load_adapter(str(value_head_dir[0]), "head", spec={"weights": "v_head.wieght"}, device="cpu")


def test_bad_head_spec_lists_every_problem():
    with pytest.raises(ThemisInputError, match=r"pooling must be.*needs 2 or more weight names.*activation"):
        HeadSpec.from_dict({"pooling": "mean", "head": "mlp", "weights": ["a"], "activation": "swish"})
    with pytest.raises(ThemisInputError, match=r"unknown key\(s\) \['append_token'\]"):
        HeadSpec.from_dict({"append_token": "<cls>"})


def test_lm_logprob_is_yes_minus_no_at_the_last_real_position(causal_lm_dir, sequences, qwen_tokenizer):
    path, lm = causal_lm_dir
    yes, no = " True", " False"
    loaded = load_adapter(str(path), "lm-logprob", spec={"yes": yes, "no": no}, dtype="fp32", device="cpu")
    yes_id, no_id = (qwen_tokenizer.encode(t, add_special_tokens=False)[0] for t in (yes, no))
    expected = []
    for ids in sequences:
        with torch.inference_mode():
            logprobs = torch.log_softmax(lm(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)
        expected.append(float(logprobs[yes_id] - logprobs[no_id]))
    batched = _engine_rewards(loaded, sequences)
    assert np.abs(batched - np.array(expected)).max() <= 1e-4
    assert np.abs(batched - _engine_rewards(loaded, sequences, one_at_a_time=True)).max() <= 1e-4


def test_lm_logprob_single_token_logit(causal_lm_dir, sequences):
    path, lm = causal_lm_dir
    loaded = load_adapter(str(path), "lm-logprob", spec={"logit_token_id": 0}, dtype="fp32", device="cpu")
    with torch.inference_mode():
        expected = np.array([float(lm(input_ids=torch.tensor([ids])).logits[0, -1, 0]) for ids in sequences])
    assert np.abs(_engine_rewards(loaded, sequences) - expected).max() <= 1e-4


def test_multi_token_yes_string_is_an_error_naming_it(causal_lm_dir):
    with pytest.raises(ThemisInputError, match=r"yes ' Yes' must be a single token.*splits it into 2"):
        load_adapter(str(causal_lm_dir[0]), "lm-logprob", spec={"yes": " Yes", "no": " No"}, device="cpu")


def test_lm_logprob_refuses_a_checkpoint_without_lm_head(tiny_model_dir):
    with pytest.raises(ThemisInputError, match=r"not in the checkpoint.*lm_head"):
        load_adapter(str(tiny_model_dir), "lm-logprob", spec={"yes": " True", "no": " False"}, device="cpu")


def test_unknown_adapter_lists_the_valid_ones(tiny_model_dir):
    with pytest.raises(ThemisInputError, match="--adapter must be one of seqcls, head, lm-logprob; got 'armo'"):
        load_adapter(str(tiny_model_dir), "armo")
    assert list(ADAPTERS) == ["seqcls", "head", "lm-logprob"]


def test_seqcls_adapter_and_scorer_accept_a_head_model(tiny_model_dir, value_head_dir):
    seqcls = load_adapter(str(tiny_model_dir), dtype="fp32", device="cpu")
    assert seqcls.model.config.num_labels == 1
    loaded = load_adapter(str(value_head_dir[0]), "head", dtype="fp32", device="cpu")
    scorer = Scorer(loaded, max_length=64)
    rewards = scorer.score(["Write f."], ["def f(): pass"])
    rendered = scorer.renderer.render("Write f.", "def f(): pass")
    assert rewards == pytest.approx(_engine_rewards(loaded, [rendered.input_ids]).tolist(), abs=1e-6)
    assert scorer.settings()["model"] == str(value_head_dir[0])
