"""The reward model: zero-initialised head, LM loss on chosen response tokens only, packed == padded."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from themis_rm.render import ChatRenderer
from themis_rm.train.batching import PairCollator
from themis_rm.train.config import LossConfig
from themis_rm.train.data import SystemPrompts, TrainingPair
from themis_rm.train.model import decoder_layer_classes, load_backbone

PAIRS = [
    TrainingPair(
        "a", "Sum two numbers.", "def f(a, b):\n    return a + b", "def f(a, b):\n    return a - b", "Be terse."
    ),
    TrainingPair(
        "b", "Reverse a string in Python, please.", "s[::-1]", "''.join(reversed(list(s))) # slow", "Prefer speed."
    ),
    TrainingPair("c", [{"role": "user", "content": "Hi"}], "Hello there, how can I help?", "Go away.", "Be kind."),
]


def _collate(tokenizer, *, packed: bool, max_length: int = 256):
    renderer = ChatRenderer(tokenizer, max_length)
    collator = PairCollator(renderer, SystemPrompts(None, seed=0), tokenizer.pad_token_id, packed=packed)
    return collator([(0, i, pair) for i, pair in enumerate(PAIRS)]), renderer


@pytest.fixture
def model(tiny_base_dir):
    loaded = load_backbone(str(tiny_base_dir), dtype=torch.float32, attn_implementation="sdpa", loss=LossConfig())
    return loaded.eval()


def test_zero_initialised_head_gives_zero_rewards_and_bt_ln2(model, qwen_tokenizer):
    batch, _ = _collate(qwen_tokenizer, packed=False)
    model.loss_config = LossConfig(lm_weight=0.0)
    with torch.no_grad():
        out = model(**batch.model_inputs(torch.device("cpu")))
    assert torch.count_nonzero(model.score.weight) == 0
    assert torch.equal(out.chosen, torch.zeros(3)) and torch.equal(out.rejected, torch.zeros(3))
    assert out.loss.item() == pytest.approx(math.log(2))


def test_lm_targets_are_exactly_the_chosen_response_and_closing_tokens(qwen_tokenizer):
    batch, renderer = _collate(qwen_tokenizer, packed=False)
    width = batch.input_ids.shape[1]
    expected_index, expected_target = [], []
    for row, pair in enumerate(PAIRS):
        seq = renderer.render(pair.prompt, pair.chosen, pair.system)
        response = seq.input_ids[seq.prefix_len :]
        assert qwen_tokenizer.decode(response).startswith(pair.chosen)  # no system/prompt/header token
        expected_target += response
        expected_index += [row * width + p - 1 for p in range(seq.prefix_len, len(seq.input_ids))]
    assert batch.lm_target.tolist() == expected_target
    assert batch.lm_index.tolist() == expected_index
    flat = batch.input_ids.flatten()
    assert torch.equal(flat[batch.lm_index + 1], batch.lm_target)  # each index predicts its next token


def test_reward_index_points_at_each_sequences_last_real_token(qwen_tokenizer):
    batch, _ = _collate(qwen_tokenizer, packed=False)
    lengths = batch.attention_mask.sum(1)
    width = batch.input_ids.shape[1]
    assert batch.reward_index.tolist() == [i * width + int(n) - 1 for i, n in enumerate(lengths)]


def test_packed_batch_equals_padded_batch(model, qwen_tokenizer):
    with torch.no_grad():
        model.score.weight.normal_()
    padded, _ = _collate(qwen_tokenizer, packed=False)
    packed, _ = _collate(qwen_tokenizer, packed=True)
    assert packed.input_ids.shape[0] == 1 and packed.attention_mask is None
    assert packed.tokens == padded.tokens == int(padded.attention_mask.sum())
    with torch.no_grad():
        a = model(**padded.model_inputs(torch.device("cpu")))
        b = model(**packed.model_inputs(torch.device("cpu")))
    assert torch.allclose(a.chosen, b.chosen, atol=1e-5) and torch.allclose(a.rejected, b.rejected, atol=1e-5)
    assert torch.allclose(a.loss, b.loss, atol=1e-5)
    assert torch.allclose(a.stats, b.stats, atol=1e-4)


def test_decoder_layer_class_is_detected_not_hard_coded(model):
    assert decoder_layer_classes(model.decoder) == ["Qwen3DecoderLayer"]
    assert model._no_split_modules == ["Qwen3DecoderLayer"]

    class Block(nn.Module):
        pass

    class Bare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(4, 2)
            self.blocks = nn.ModuleList([Block(), Block(), Block()])

    assert decoder_layer_classes(Bare()) == ["Block"]
