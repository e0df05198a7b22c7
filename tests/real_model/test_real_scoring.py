"""Real weights, real tokenizer, real chat template (SmolLM2-135M-Instruct, ChatML that injects a default system
prompt): the renderer writes exactly what the template writes, every engine agrees with a plain HF forward, and
lm-logprob reads the right position. Few and short sequences: a 135M model on a CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from themis_rm.pairs import ScoreRequest
from themis_rm.render import build_messages
from themis_rm.scoring import Scorer

pytestmark = pytest.mark.real_model

PROMPTS = ["Write a Python function that returns the sum of a list.", "Write is_even(n) in Python."]
RESPONSES = [
    [
        "def total(xs):\n    return sum(xs)",
        "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s",
        "sum",
    ],
    [
        "def is_even(n):\n    return n % 2 == 0",
        "def is_even(n):\n    return not n & 1",
        "is_even = lambda n: n % 2 == 0",
    ],
]
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
EXACT = 1e-4


@pytest.fixture(scope="module")
def scorer(real_reward_dir) -> Scorer:
    return Scorer.from_pretrained(str(real_reward_dir), prompts="open", max_length=512, engine="padded")


def template_ids(tokenizer, messages) -> tuple[str, list[int]]:
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return text, tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("case", ["template default system", "criterion system", "own system turn", "multi-turn"])
def test_the_renderer_writes_exactly_what_the_real_template_writes(scorer, case):
    tokenizer = scorer.loaded.tokenizer
    prompt, response, system = PROMPTS[0], RESPONSES[0][1], None
    if case == "criterion system":
        system = scorer.system_prompt("security")
    elif case == "own system turn":
        prompt = [{"role": "system", "content": "Answer in Python."}, {"role": "user", "content": PROMPTS[0]}]
    elif case == "multi-turn":
        prompt = [
            {"role": "user", "content": "Hi."},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": PROMPTS[1]},
        ]
    messages = build_messages(prompt, response, system)
    text, ids = template_ids(tokenizer, messages)
    assert scorer.renderer.apply_template(messages) == text  # byte for byte
    rendered = scorer.renderer.render(prompt, response, system)
    assert rendered.input_ids == ids  # id for id
    assert ids.count(tokenizer.bos_token_id) == text.count("<|im_start|>") and ids[0] == tokenizer.bos_token_id
    assert (DEFAULT_SYSTEM in text) == (case in ("template default system", "multi-turn"))


def test_truncation_keeps_the_end_of_turn_the_reward_is_read_from(real_reward_dir):
    short = Scorer.from_pretrained(str(real_reward_dir), prompts="open", max_length=256)
    tokenizer = short.loaded.tokenizer
    long_response = "def total(xs):\n" + "    # keep adding\n" * 60 + "    return sum(xs)"
    rendered = short.renderer.render(PROMPTS[0], long_response, short.system_prompt("runtime"))
    assert len(rendered.input_ids) == 256 and rendered.truncated_tokens > 0
    assert tokenizer.decode(rendered.input_ids[-2:]) == "<|im_end|>\n"
    assert rendered.input_ids.count(tokenizer.bos_token_id) == 3  # system, user, assistant headers: none cut


def test_prefix_and_padded_engines_equal_a_plain_hf_forward_on_real_weights(real_reward_dir, scorer):
    prefix = Scorer.from_pretrained(str(real_reward_dir), prompts="open", max_length=512, engine="prefix")
    model = AutoModelForSequenceClassification.from_pretrained(real_reward_dir, dtype=torch.float32).eval()
    for criteria in ("security", None):  # best-of-n groups under a criterion prompt, and the template's own system
        system = scorer.system_prompt(criteria)
        requests = [ScoreRequest(p, r, system) for p, group in zip(PROMPTS, RESPONSES, strict=True) for r in group]
        rendered = scorer.renderer.render_many(requests)
        with torch.no_grad():
            hf = [model(input_ids=torch.tensor([r.input_ids])).logits[0, 0].item() for r in rendered]
        np.testing.assert_allclose(scorer.score_requests(requests).rewards, hf, atol=EXACT)
        np.testing.assert_allclose(prefix.score_requests(requests).rewards, hf, atol=EXACT)
    assert prefix.path_counts["prefix"] == 2 and scorer.path_counts["padded"] >= 2


def test_bf16_decisions_against_fp32_are_reported(real_reward_dir, scorer, record_property):
    """Not a threshold: how often bf16 picks the same response of a pair as fp32, on real hidden states."""
    bf16 = Scorer.from_pretrained(str(real_reward_dir), prompts="open", max_length=512, dtype="bfloat16")
    pairs = [
        (p, group[a], group[b])
        for p, group in zip(PROMPTS, RESPONSES, strict=True)
        for a, b in ((0, 1), (0, 2), (1, 2))
    ]
    fp32_margin, bf16_margin = [], []
    for s, out in ((scorer, fp32_margin), (bf16, bf16_margin)):
        for prompt, chosen, rejected in pairs:
            a, b = s.score([prompt, prompt], [chosen, rejected], criteria="full")
            out.append(a - b)
    agreement = float(np.mean(np.sign(fp32_margin) == np.sign(bf16_margin)))
    worst = float(np.max(np.abs(np.subtract(fp32_margin, bf16_margin))))
    record_property("bf16_fp32_decision_agreement", agreement)
    record_property("bf16_fp32_max_margin_delta", worst)
    print(f"bf16 vs fp32 on {len(pairs)} real pairs: agreement {agreement:.2f}, max |margin delta| {worst:.4f}")
    assert np.isfinite(bf16_margin).all() and 0.0 <= agreement <= 1.0


def test_lm_logprob_reads_yes_minus_no_after_the_question_like_a_hand_forward(real_lm_dir):
    question = "Is the code above correct? Answer Yes or No."
    judge = Scorer.from_pretrained(
        str(real_lm_dir), adapter="lm-logprob", adapter_spec={"question": question}, max_length=512
    )
    lm = AutoModelForCausalLM.from_pretrained(real_lm_dir, dtype=torch.float32).eval()
    tokenizer = judge.loaded.tokenizer
    yes, no = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in (" Yes", " No"))
    assert len(yes) == len(no) == 1
    got = judge.score(PROMPTS, [RESPONSES[0][0], RESPONSES[1][2]])
    for prompt, response, reward in zip(PROMPTS, [RESPONSES[0][0], RESPONSES[1][2]], got, strict=True):
        turns = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": response},
            {"role": "user", "content": question},
        ]
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logprobs = torch.log_softmax(lm(input_ids=ids).logits[0, -1].float(), dim=-1)
        assert reward == pytest.approx((logprobs[yes[0]] - logprobs[no[0]]).item(), abs=EXACT)
