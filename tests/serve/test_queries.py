"""Splitting policy-formatted strings into prompt turns and response (``/get_reward --rerender``)."""

from __future__ import annotations

import pytest

from themis_rm.serve.errors import RequestFieldError
from themis_rm.serve.queries import QuerySplitter
from themis_rm.serve.settings import DEFAULT_END_MARKERS, QWEN_ASSISTANT_MARKER

CHATML = (
    "<|im_start|>system\nYou are Qwen.<|im_end|>\n"
    "<|im_start|>user\nWrite f.<|im_end|>\n"
    "<|im_start|>assistant\ndef f():\n    return 1<|im_end|>\n<|endoftext|><|endoftext|>"
)
LLAMA = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWrite f.<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\ndef f(): pass<|eot_id|>"
)


@pytest.fixture
def chatml() -> QuerySplitter:
    return QuerySplitter(QWEN_ASSISTANT_MARKER, DEFAULT_END_MARKERS)


def test_chatml_query_splits_on_the_last_assistant_header_and_keeps_the_policy_system_turn(chatml):
    """The split keeps every turn; whether the system turn gives way is the service's one rule (criteria or not)."""
    split = chatml.split(CHATML, None, "query[0]")
    assert [turn["role"] for turn in split.turns] == ["system", "user"]
    assert split.turns[1] == {"role": "user", "content": "Write f."}
    assert split.response == "def f():\n    return 1"


def test_prompts_sent_by_the_caller_give_the_split_point_even_when_the_response_quotes_the_marker(chatml):
    prompt = "<|im_start|>user\nQuote a ChatML header.<|im_end|>\n<|im_start|>assistant\n"
    response = "It is <|im_start|>assistant\n, then the reply."
    split = chatml.split(prompt + response + "<|im_end|>\n", prompt, "query[0]")
    assert split.turns == [{"role": "user", "content": "Quote a ChatML header."}]
    assert split.response == response
    assert chatml.split(prompt + response, None, "query[0]").response == ", then the reply."  # why prompts help


def test_multi_turn_prompts_keep_every_turn_in_order(chatml):
    query = (
        "<|im_start|>user\nA<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n"
        "<|im_start|>user\nC<|im_end|>\n<|im_start|>assistant\nD<|im_end|>\n"
    )
    split = chatml.split(query, None, "query[0]")
    assert [t["content"] for t in split.turns] == ["A", "B", "C"] and split.response == "D"


def test_a_llama_marker_splits_llama_formatted_queries():
    splitter = QuerySplitter("<|start_header_id|>assistant<|end_header_id|>\n\n", DEFAULT_END_MARKERS)
    split = splitter.split(LLAMA, None, "query[0]")
    assert split.turns == [{"role": "user", "content": "Write f."}] and split.response == "def f(): pass"


def test_a_query_without_the_marker_names_the_field_and_the_flag(chatml):
    with pytest.raises(RequestFieldError, match=r"query\[3\].*--assistant-marker"):
        chatml.split(LLAMA, None, "query[3]")


def test_a_query_without_a_user_turn_is_refused(chatml):
    with pytest.raises(RequestFieldError, match="no user turn"):
        chatml.split("<|im_start|>system\nS<|im_end|>\n<|im_start|>assistant\nx", None, "query[0]")


def test_an_empty_think_block_opening_the_response_is_template_boilerplate(chatml):
    query = "<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\ndef f(): pass"
    assert chatml.split(query, None, "query[0]").response == "def f(): pass"


def test_a_think_block_with_reasoning_stays_in_the_response(chatml):
    response = "<think>\nf needs no body.\n</think>\n\ndef f(): pass"
    query = f"<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n{response}<|im_end|>\n"
    assert chatml.split(query, None, "query[0]").response == response
