"""The renderer: exact ids, one BOS, split points, response-only truncation that keeps the closing tokens."""

from __future__ import annotations

import pytest

from themis_rm.errors import PromptTooLongError, ThemisInputError
from themis_rm.pairs import ScoreRequest
from themis_rm.render import ChatRenderer, build_messages

PROMPT = "Write a Python function that checks if a string is a palindrome."
CHOSEN = "def is_palindrome(s: str) -> bool:\n    s = s.lower()\n    return s == s[::-1]\n"
REJECTED = (
    "def is_palindrome(s):\n    for i in range(len(s)):\n        if s[i] != s[len(s) - i]:\n            return False\n"
)
SYSTEM = "You judge code. Prefer correct code.\n\n3. **Runtime Efficiency**: fast code wins."


def _template_ids(tokenizer, prompt, response, system=None):
    text = tokenizer.apply_chat_template(build_messages(prompt, response, system), tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("system", [None, SYSTEM])
def test_ids_equal_tokenising_the_whole_templated_text(qwen_tokenizer, system):
    rendered = ChatRenderer(qwen_tokenizer).render(PROMPT, CHOSEN, system)
    assert rendered.input_ids == _template_ids(qwen_tokenizer, PROMPT, CHOSEN, system)
    assert not rendered.truncated


def test_bos_emitting_template_gets_exactly_one_bos(llama_tokenizer):
    bos = llama_tokenizer.bos_token_id
    text = llama_tokenizer.apply_chat_template(build_messages(PROMPT, CHOSEN, SYSTEM), tokenize=False)
    assert llama_tokenizer(text)["input_ids"][:2] == [bos, bos], "fixture must reproduce the double-BOS trap"
    ids = ChatRenderer(llama_tokenizer).render(PROMPT, CHOSEN, SYSTEM).input_ids
    assert ids[0] == bos
    assert ids.count(bos) == 1


def test_split_points_separate_system_prompt_and_response(qwen_tokenizer):
    renderer = ChatRenderer(qwen_tokenizer)
    chosen, rejected = renderer.render_many(
        [ScoreRequest(PROMPT, CHOSEN, SYSTEM), ScoreRequest(PROMPT, REJECTED, SYSTEM)]
    )
    other_prompt = renderer.render("Reverse a list in place.", CHOSEN, SYSTEM)
    decode = qwen_tokenizer.decode
    assert (
        decode(chosen.input_ids[: chosen.system_len]) == f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
    )
    assert decode(chosen.input_ids[chosen.system_len : chosen.prefix_len]) == (
        f"{PROMPT}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert decode(chosen.input_ids[chosen.prefix_len :]) == f"{CHOSEN}<|im_end|>\n"
    assert chosen.input_ids[: chosen.prefix_len] == rejected.input_ids[: rejected.prefix_len]
    assert other_prompt.input_ids[: other_prompt.system_len] == chosen.input_ids[: chosen.system_len]


def test_no_system_prompt_has_zero_system_len(qwen_tokenizer):
    rendered = ChatRenderer(qwen_tokenizer).render(PROMPT, CHOSEN)
    assert rendered.system_len == 0
    assert qwen_tokenizer.decode(rendered.input_ids[: rendered.prefix_len]).startswith("<|im_start|>user\n")


def test_truncation_keeps_im_end_and_cuts_only_the_response(qwen_tokenizer):
    full = ChatRenderer(qwen_tokenizer).render(PROMPT, CHOSEN * 20, SYSTEM)
    max_length = full.prefix_len + 10
    cut = ChatRenderer(qwen_tokenizer, max_length=max_length).render(PROMPT, CHOSEN * 20, SYSTEM)
    im_end, newline = full.input_ids[-2:]
    assert qwen_tokenizer.decode([im_end, newline]) == "<|im_end|>\n"
    assert len(cut.input_ids) == max_length
    assert cut.input_ids[-2:] == [im_end, newline]
    assert cut.input_ids[: cut.prefix_len] == full.input_ids[: full.prefix_len]
    assert cut.input_ids[full.prefix_len : -2] == full.input_ids[full.prefix_len : full.prefix_len + 8]
    assert cut.truncated_tokens == len(full.input_ids) - max_length


def test_sequences_within_budget_are_not_truncated(qwen_tokenizer):
    full = ChatRenderer(qwen_tokenizer).render(PROMPT, CHOSEN)
    exact = ChatRenderer(qwen_tokenizer, max_length=len(full.input_ids)).render(PROMPT, CHOSEN)
    assert exact == full


def test_prompt_without_room_for_a_response_is_an_error_naming_the_request(qwen_tokenizer):
    full = ChatRenderer(qwen_tokenizer).render(PROMPT, CHOSEN, SYSTEM)
    renderer = ChatRenderer(qwen_tokenizer, max_length=full.prefix_len + 2)
    with pytest.raises(PromptTooLongError, match=r"request 1: .*max_length"):
        renderer.render_many([ScoreRequest("short", "ok"), ScoreRequest(PROMPT, CHOSEN, SYSTEM)])


def test_message_list_prompt_renders_every_turn(qwen_tokenizer):
    turns = [
        {"role": "user", "content": "Write add(a, b)."},
        {"role": "assistant", "content": "def add(a, b): return a + b"},
        {"role": "user", "content": "Now make it variadic."},
    ]
    rendered = ChatRenderer(qwen_tokenizer).render(turns, "def add(*xs): return sum(xs)", SYSTEM)
    prefix = qwen_tokenizer.decode(rendered.input_ids[: rendered.prefix_len])
    assert "Write add(a, b)." in prefix and prefix.endswith(
        "Now make it variadic.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert rendered.input_ids == _template_ids(qwen_tokenizer, turns, "def add(*xs): return sum(xs)", SYSTEM)


def test_criterion_prompt_on_a_conversation_with_its_own_system_message_is_refused():
    with pytest.raises(ThemisInputError, match="already has a system message"):
        build_messages([{"role": "system", "content": "x"}, {"role": "user", "content": "y"}], "z", SYSTEM)


def test_tokenizer_without_chat_template_uses_the_plain_fallback(qwen_tokenizer):
    import copy

    bare = copy.deepcopy(qwen_tokenizer)
    bare.chat_template = None
    rendered = ChatRenderer(bare).render(PROMPT, CHOSEN, SYSTEM)
    assert bare.decode(rendered.input_ids) == f"System:\n{SYSTEM}\n\nUser:\n{PROMPT}\n\nAssistant:\n{CHOSEN}"
    assert bare.decode(rendered.input_ids[rendered.prefix_len :]) == CHOSEN


def test_the_fallback_keeps_the_one_bos_a_tokenizer_adds_by_default(llama_tokenizer):
    import copy

    bare = copy.deepcopy(llama_tokenizer)
    bare.chat_template = None
    rendered = ChatRenderer(bare).render(PROMPT, CHOSEN)
    assert rendered.input_ids[0] == bare.bos_token_id and rendered.input_ids.count(bare.bos_token_id) == 1
    assert bare.decode(rendered.input_ids[rendered.prefix_len :]) == CHOSEN


def test_real_qwen3_template_matches_hf_chat_template_tokenisation(real_qwen3_tokenizer):
    renderer = ChatRenderer(real_qwen3_tokenizer)
    rendered = renderer.render(PROMPT, "\n\n" + CHOSEN, SYSTEM)
    expected = real_qwen3_tokenizer.apply_chat_template(
        build_messages(PROMPT, "\n\n" + CHOSEN, SYSTEM), tokenize=True, return_dict=True
    )["input_ids"]
    assert rendered.input_ids == expected
    tail = real_qwen3_tokenizer.decode(rendered.input_ids[rendered.prefix_len :])
    assert tail == CHOSEN + "<|im_end|>\n"  # the template strips the leading newlines of the final turn
    assert real_qwen3_tokenizer.decode(rendered.input_ids[-2:]) == "<|im_end|>\n"


def test_overlong_prompt_is_cut_at_its_end_keeping_system_header_and_closing_tokens(qwen_tokenizer):
    long_prompt = "Explain the following code. " + "x = compute(x) + 1\n" * 300
    full = ChatRenderer(qwen_tokenizer).render(long_prompt, CHOSEN * 10, SYSTEM)
    max_length = full.system_len + 200
    cut = ChatRenderer(qwen_tokenizer, max_length=max_length).render(long_prompt, CHOSEN * 10, SYSTEM)
    assert len(cut.input_ids) == max_length and cut.prompt_truncated_tokens > 0
    assert cut.truncated_tokens == len(full.input_ids) - max_length
    assert cut.input_ids[: cut.system_len] == full.input_ids[: full.system_len]
    header = full.input_ids[full.prefix_len - 9 : full.prefix_len]  # <|im_end|>\n<|im_start|>assistant\n<think>...
    assert cut.input_ids[cut.prefix_len - 9 : cut.prefix_len] == header
    assert len(cut.input_ids) - cut.prefix_len - 2 == max_length // 2, "the response keeps half the budget"
    assert qwen_tokenizer.decode(cut.input_ids[-2:]) == "<|im_end|>\n"
    assert qwen_tokenizer.decode(cut.input_ids[cut.system_len :]).startswith("Explain the following code.")


def test_prompt_overflow_error_policy_refuses_to_cut_the_prompt(qwen_tokenizer):
    long_prompt = "y = 2\n" * 400
    renderer = ChatRenderer(qwen_tokenizer, max_length=300, prompt_overflow="error")
    with pytest.raises(PromptTooLongError, match="--prompt-overflow truncate"):
        renderer.render(long_prompt, CHOSEN)
    with pytest.raises(ThemisInputError, match="--prompt-overflow must be one of truncate, error"):
        ChatRenderer(qwen_tokenizer, prompt_overflow="drop")


def test_the_probe_cache_is_bounded_by_bytes_and_never_changes_a_rendering(qwen_tokenizer):
    """It was bounded by entries only (65,536 of up to 88 KB each for 30 KB prompts: about 5.5 GB)."""
    budget = 512 * 1024
    cached = ChatRenderer(qwen_tokenizer, probe_cache_bytes=budget)
    uncached = ChatRenderer(qwen_tokenizer, probe_cache_bytes=0)
    requests = [ScoreRequest(f"task {i}: " + "describe the input. " * 1500, CHOSEN, SYSTEM) for i in range(40)]
    for request in requests + requests[-3:]:  # the last three again: served from the cache
        assert cached.render_many([request]) == uncached.render_many([request])
    cache = cached.probe_cache
    assert 0 < cache.bytes <= budget and len(cache) < len(requests)
    assert cache.hits == 3 and cache.misses == len(requests) and len(uncached.probe_cache) == 0
