"""Adapters: custom scalar heads and causal-LM log-prob rewards equal a hand computation, batched or not."""

from __future__ import annotations

import copy
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
from themis_rm.scoring.logprob import LogprobSpec, answer_suffix, append_suffix, score_attributes

QUESTION = "Is the response above correct? Answer True or False."
# What the tiny Qwen3-style template adds after the response for a following user turn plus the generation prompt.
QUESTION_TURN = f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
EMPTY_THINK = "<think>\n\n</think>\n\n"


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


# ----------------------------------------------------------------------------------- lm-logprob: answer position
def _next_logits(lm, ids: list[int]) -> torch.Tensor:
    """A plain forward over the full ids: the next-token logits after the last one, fp32."""
    with torch.inference_mode():
        return lm(input_ids=torch.tensor([ids])).logits[0, -1].float()


def _yes_minus_no(logits: torch.Tensor, tokenizer, yes: str = " True", no: str = " False") -> float:
    logprobs = torch.log_softmax(logits, dim=-1)
    yes_id, no_id = (tokenizer.encode(t, add_special_tokens=False)[0] for t in (yes, no))
    return float(logprobs[yes_id] - logprobs[no_id])


@pytest.mark.parametrize(
    ("spec", "appended"),
    [
        ({"question": QUESTION}, QUESTION_TURN),
        ({"question": QUESTION, "suffix": EMPTY_THINK}, QUESTION_TURN + EMPTY_THINK),
        ({"suffix": "<|im_start|>assistant\nVerdict:"}, "<|im_start|>assistant\nVerdict:"),
    ],
)
def test_logprob_is_read_after_the_question_at_the_answer_position(
    causal_lm_dir, sequences, qwen_tokenizer, spec, appended
):
    path, lm = causal_lm_dir
    spec = {**spec, "yes": " True", "no": " False"}
    loaded = load_adapter(str(path), "lm-logprob", spec=spec, dtype="fp32", device="cpu")
    suffix_ids = qwen_tokenizer.encode(appended, add_special_tokens=False)
    assert loaded.reserved_tokens == len(suffix_ids)
    expected = np.array([_yes_minus_no(_next_logits(lm, ids + suffix_ids), qwen_tokenizer) for ids in sequences])
    batched = _engine_rewards(loaded, sequences)
    assert np.abs(batched - expected).max() <= 1e-4
    assert np.abs(batched - _engine_rewards(loaded, sequences, one_at_a_time=True)).max() <= 1e-4
    without = np.array([_yes_minus_no(_next_logits(lm, ids), qwen_tokenizer) for ids in sequences])
    assert np.abs(batched - without).min() > 1e-3  # really read elsewhere than after <|im_end|>


def test_question_survives_truncation_within_max_length(causal_lm_dir, qwen_tokenizer):
    path, lm = causal_lm_dir
    spec = {"question": QUESTION, "yes": " True", "no": " False"}
    loaded = load_adapter(str(path), "lm-logprob", spec=spec, dtype="fp32", device="cpu")
    seen = []
    hook = loaded.model.lm.base_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"][kwargs["attention_mask"].bool()].tolist()),
        with_kwargs=True,
    )
    scorer = Scorer(loaded, max_length=80)
    response = "def f(x):\n    return x + 1\n" * 20
    try:
        reward = scorer.score(["Write f."], [response])[0]
    finally:
        hook.remove()
    rendered = scorer.renderer.render("Write f.", response)
    suffix_ids = qwen_tokenizer.encode(QUESTION_TURN, add_special_tokens=False)
    assert rendered.truncated_tokens > 0
    assert seen == [rendered.input_ids + suffix_ids] and len(seen[0]) == 80
    assert qwen_tokenizer.decode(rendered.input_ids).endswith("<|im_end|>\n")
    assert reward == pytest.approx(_yes_minus_no(_next_logits(lm, seen[0]), qwen_tokenizer), abs=1e-4)
    with pytest.raises(ThemisInputError, match=rf"--max-length {len(suffix_ids)} leaves no room.*appends"):
        Scorer(loaded, max_length=len(suffix_ids))


def test_attributes_combine_as_a_weighted_sum(causal_lm_dir, sequences, qwen_tokenizer):
    path, lm = causal_lm_dir
    other = "Is the code above secure? Answer True or False."
    spec = {
        "question": QUESTION,
        "yes": " True",
        "no": " False",
        "attributes": [
            {"name": "correct", "weight": 2.0},  # the spec's tokens and question
            {"name": "im_end_logit", "logit_token": "<|im_end|>", "weight": -0.5},
            {"name": "secure", "question": other, "yes": " False", "no": " True", "weight": 0.25},
        ],
    }
    loaded = load_adapter(str(path), "lm-logprob", spec=spec, dtype="fp32", device="cpu")
    own = qwen_tokenizer.encode(QUESTION_TURN, add_special_tokens=False)
    secure = qwen_tokenizer.encode(QUESTION_TURN.replace(QUESTION, other), add_special_tokens=False)
    im_end = qwen_tokenizer.convert_tokens_to_ids("<|im_end|>")
    expected = np.array(
        [
            [
                _yes_minus_no(_next_logits(lm, ids + own), qwen_tokenizer),
                float(_next_logits(lm, ids + own)[im_end]),
                _yes_minus_no(_next_logits(lm, ids + secure), qwen_tokenizer, yes=" False", no=" True"),
            ]
            for ids in sequences
        ]
    )
    table = score_attributes(loaded, sequences, batch_tokens=64)
    assert loaded.model.attribute_names == ("correct", "im_end_logit", "secure")
    assert table.shape == (len(sequences), 3) and np.abs(table - expected).max() <= 1e-4
    assert np.abs(_engine_rewards(loaded, sequences) - expected @ np.array([2.0, -0.5, 0.25])).max() <= 1e-4
    assert loaded.reserved_tokens == max(len(own), len(secure))
    assert loaded.adapter_spec["attributes"][2]["question"] == other


def test_append_suffix_reads_the_mask_so_left_padding_works_too():
    right = torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])
    left = torch.tensor([[5, 6, 7], [0, 8, 9]]), torch.tensor([[1, 1, 1], [0, 1, 1]])
    expected_ids = torch.tensor([[5, 6, 7, 1, 2], [8, 9, 1, 2, 0]])
    for ids, mask in (right, left):
        out_ids, out_mask = append_suffix(ids, mask, [1, 2])
        assert torch.equal(out_ids, expected_ids)
        assert torch.equal(out_mask, torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]))


def test_bad_logprob_spec_names_every_key_and_the_fix():
    with pytest.raises(ThemisInputError, match=r"unknown key\(s\) \['questoin'\]; valid keys are attributes, logit"):
        LogprobSpec.from_dict({"questoin": QUESTION})
    bad_entries = [{"name": "a", "wieght": 1}, {"weight": 1}, "b", {"name": "c", "yes": " T", "weight": "high"}]
    with pytest.raises(ThemisInputError) as caught:
        LogprobSpec.from_dict({"attributes": bad_entries})
    message = str(caught.value)
    for part in (
        "attributes[0]: unknown key(s) ['wieght']",
        "attributes[1]: missing key(s) ['name']",
        'attributes[2] must be an object like {"name": "correct"}',
        "weight must be a finite number, got 'high'",
        "give yes and no together",
    ):
        assert part in message
    with pytest.raises(ThemisInputError, match=r"attribute names must be unique, \['a'\]"):
        LogprobSpec.from_dict({"attributes": [{"name": "a"}, {"name": "a", "weight": 2}]})
    with pytest.raises(ThemisInputError, match=r"attributes must be a non-empty list"):
        LogprobSpec.from_dict({"attributes": []})
    with pytest.raises(ThemisInputError, match=r"give yes/no or a logit token, not both"):
        LogprobSpec.from_dict({"attributes": [{"name": "a", "yes": " T", "no": " F", "logit_token_id": 3}]})
    assert LogprobSpec.from_dict({"yes": " True", "no": " False"}) == LogprobSpec(yes=" True", no=" False")


def test_attribute_tokens_that_are_not_one_token_are_all_named(causal_lm_dir):
    spec = {
        "attributes": [
            {"name": "correct", "yes": " Yes", "no": " False"},
            {"name": "secure", "logit_token": " Maybe"},
        ]
    }
    with pytest.raises(ThemisInputError) as caught:
        load_adapter(str(causal_lm_dir[0]), "lm-logprob", spec=spec, device="cpu")
    message = str(caught.value)
    assert "attributes[0] ('correct').yes ' Yes' must be a single token" in message
    assert "attributes[1] ('secure').logit_token ' Maybe' must be a single token" in message
    assert "mind the leading space" in message
    with pytest.raises(ThemisInputError, match=r"token ids \['reward: 999999'\] outside the LM's vocabulary"):
        load_adapter(str(causal_lm_dir[0]), "lm-logprob", spec={"logit_token_id": 999999}, device="cpu")


def test_question_without_a_chat_template_points_to_suffix(qwen_tokenizer):
    bare = copy.deepcopy(qwen_tokenizer)
    bare.chat_template = None
    with pytest.raises(ThemisInputError, match=r"no chat template.*write the turn out as the spec's 'suffix'"):
        answer_suffix(bare, QUESTION)
    assert answer_suffix(bare, "", "\nVerdict:") == "\nVerdict:"


def test_attribute_scores_need_the_lm_logprob_adapter(tiny_model_dir, sequences):
    loaded = load_adapter(str(tiny_model_dir), dtype="fp32", device="cpu")
    with pytest.raises(ThemisInputError, match=r"per-attribute scores need --adapter lm-logprob.*'seqcls'"):
        score_attributes(loaded, sequences)
