"""Conversation -> token ids: the one renderer shared by score, bench, train and serve.

The tokenizer's chat template renders the text (``add_generation_prompt=False``, as Themis-RM was trained and
evaluated); the text is then tokenised once with ``add_special_tokens=False`` so a template that emits BOS gets
exactly one. Two probe renderings with sentinel contents locate, in characters and then in tokens,

* ``system_len``: the end of the part shared by every request with the same system prompt, and
* ``prefix_len``: the end of the part shared by every response to the same prompt (assistant header included).

Truncation spends the ``max_length`` budget on the response only: the template's closing tokens (Qwen3:
``<|im_end|>\\n``, where the reward is read) always survive.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

from themis_rm.bytecache import ByteBudgetCache
from themis_rm.errors import PromptTooLongError, RenderError, ThemisInputError
from themis_rm.pairs import Message, Prompt, ScoreRequest

logger = logging.getLogger(__name__)

PROMPT_OVERFLOW_POLICIES = ("truncate", "error")
_USER_SENTINEL = "\u2063THEMIS-USER-SENTINEL\u2063"
_RESPONSE_SENTINEL = "\u2063THEMIS-RESPONSE-SENTINEL\u2063"
PROBE_CACHE_BYTES = 64 * 2**20
"""What the per-prompt probe renderings may keep in memory (a server sees unboundedly many prompts)."""


@dataclass(frozen=True)
class RenderedSequence:
    """Token ids of one (system, prompt, response) conversation and where its shared parts end.

    Attributes:
        input_ids: the whole conversation, closing template tokens included.
        system_len: tokens shared by all requests with this system prompt (0 when there is none).
        prefix_len: tokens before the response (system + prompt turns + assistant header).
        truncated_tokens: tokens dropped to fit ``max_length`` (0 when nothing was cut), prompt ones included.
        prompt_truncated_tokens: of those, tokens cut from the end of the last prompt turn.
    """

    input_ids: list[int]
    system_len: int
    prefix_len: int
    truncated_tokens: int = 0
    prompt_truncated_tokens: int = 0

    @property
    def truncated(self) -> bool:
        return self.truncated_tokens > 0


def build_messages(prompt: Prompt, response: str, system: str | None = None) -> list[Message]:
    """The chat: optional system turn, the prompt (text or message list), then the response as assistant turn."""
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if system is not None:
        if turns and turns[0].get("role") == "system":
            raise ThemisInputError(
                "the conversation already has a system message and a criterion prompt was asked for; "
                "drop one of them (use --criterion none to keep the conversation's own system message)"
            )
        turns.insert(0, {"role": "system", "content": system})
    return [*turns, {"role": "assistant", "content": response}]


class ChatRenderer:
    """Renders conversations with a tokenizer's chat template and truncates responses to ``max_length``.

    Args:
        tokenizer: a fast HF tokenizer (offsets are needed to map text boundaries to tokens).
        max_length: total token budget per sequence; None keeps everything.
        prompt_overflow: when the prompt leaves no room for the response, ``"truncate"`` caps the response at
            half the budget and cuts the end of the last prompt turn (system prompt and template tokens are
            always kept; counted in ``prompt_truncated_tokens``); ``"error"`` raises instead.
        probe_cache_bytes: memory the per-prompt probe renderings may keep (least recently used evicted).
    """

    def __init__(
        self,
        tokenizer,
        max_length: int | None = None,
        prompt_overflow: str = "truncate",
        probe_cache_bytes: int = PROBE_CACHE_BYTES,
    ) -> None:
        if prompt_overflow not in PROMPT_OVERFLOW_POLICIES:
            raise ThemisInputError(
                f"--prompt-overflow must be one of {', '.join(PROMPT_OVERFLOW_POLICIES)}, got {prompt_overflow!r}"
            )
        self.prompt_overflow = prompt_overflow
        if not getattr(tokenizer, "is_fast", False):
            raise RenderError("a fast tokenizer is required (token offsets locate the prompt/response split)")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.uses_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self._fallback_bos = "" if self.uses_chat_template else _default_bos(tokenizer)
        self._structure_probe = lru_cache(maxsize=256)(self._structure_probe_uncached)  # one per system prompt
        self.probe_cache: ByteBudgetCache[tuple, str] = ByteBudgetCache(probe_cache_bytes)

    def render(self, prompt: Prompt, response: str, system: str | None = None) -> RenderedSequence:
        """Render one conversation; see :meth:`render_many`."""
        return self.render_many([ScoreRequest(prompt=prompt, response=response, system=system)])[0]

    def render_many(self, requests: Sequence[ScoreRequest]) -> list[RenderedSequence]:
        """Render and tokenise a batch of requests (one tokenizer call for all of them).

        Raises:
            PromptTooLongError: when the system prompt and template leave no room, or the prompt does and
                ``prompt_overflow="error"``; the message names the request index.
        """
        texts, bounds = [], []
        for request in requests:
            messages = build_messages(request.prompt, request.response, request.system)
            text = self.apply_template(messages)
            texts.append(text)
            bounds.append(self._char_bounds(text, request))
        encoded = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        return [
            self._to_sequence(i, ids, offsets, bound)
            for i, (ids, offsets, bound) in enumerate(
                zip(encoded["input_ids"], encoded["offset_mapping"], bounds, strict=True)
            )
        ]

    @cached_property
    def leading_bos_id(self) -> int | None:
        """The BOS id every rendered conversation starts with (a template that writes ``bos_token`` first, or the
        fallback's), else None; what raw text must start with to be scored as the model was trained."""
        bos = getattr(self.tokenizer, "bos_token", None)
        probe = self.apply_template(build_messages(_USER_SENTINEL, _RESPONSE_SENTINEL))
        return self.tokenizer.bos_token_id if bos and probe.startswith(bos) else None

    def apply_template(self, messages: list[Message]) -> str:
        """The conversation as text: the tokenizer's chat template, or a plain fallback when it has none."""
        if self.uses_chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        return self._fallback_bos + _fallback_template(messages)

    # --------------------------------------------------------------------------------------------- internals
    def _char_bounds(self, text: str, request: ScoreRequest) -> _CharBounds:
        """Where the prompt, its last turn, the prefix and the response end, as character offsets into ``text``."""
        structure_probe = self._structure_probe(request.system)
        response_probe = self._response_probe(request.system, request.prompt)
        response_at = response_probe.index(_RESPONSE_SENTINEL)
        prefix_end = min(_common_prefix(text, response_probe), response_at)
        closing = len(response_probe) - response_at - len(_RESPONSE_SENTINEL)
        response_end = max(prefix_end, len(text) - min(_common_suffix(text, response_probe), closing))
        user_at = structure_probe.index(_USER_SENTINEL)
        prompt_start = min(_common_prefix(text, structure_probe), user_at, prefix_end)
        header = structure_probe.index(_RESPONSE_SENTINEL) - user_at - len(_USER_SENTINEL)
        user_end = max(prompt_start, prefix_end - header)
        return _CharBounds(prompt_start, request.system is not None, user_end, prefix_end, response_end)

    def _structure_probe_uncached(self, system: str | None) -> str:
        """The template around a sentinel prompt and a sentinel response: where the turns' contents sit."""
        return self.apply_template(build_messages(_USER_SENTINEL, _RESPONSE_SENTINEL, system))

    def _response_probe(self, system: str | None, prompt: Prompt) -> str:
        """The real prompt before a sentinel response: where the response starts and its closing tokens begin."""
        return self.probe_cache.get(
            (system, _prompt_key(prompt)),
            lambda: self.apply_template(build_messages(prompt, _RESPONSE_SENTINEL, system)),
        )

    def _to_sequence(self, index: int, ids: list[int], offsets, bounds: _CharBounds) -> RenderedSequence:
        ends = [end for _, end in offsets]
        starts = [start for start, _ in offsets]
        prompt_start = bisect.bisect_right(ends, bounds.prompt_start)
        system_len = prompt_start if bounds.has_system else 0
        user_end = max(bisect.bisect_right(ends, bounds.user_end), prompt_start)
        prefix_len = bisect.bisect_right(ends, bounds.prefix_end)
        closing_start = max(bisect.bisect_left(starts, bounds.response_end), prefix_len)
        overflow = len(ids) - self.max_length if self.max_length else 0
        if overflow <= 0:
            return RenderedSequence(list(ids), system_len, prefix_len)
        response_tokens = closing_start - prefix_len
        if overflow < response_tokens:
            kept = [*ids[: closing_start - overflow], *ids[closing_start:]]
            return RenderedSequence(kept, system_len, prefix_len, truncated_tokens=overflow)
        # The response cannot absorb the overflow: keep at most half the budget of it and cut the prompt's end.
        keep_response = min(response_tokens, max(1, self.max_length // 2))
        prompt_cut = overflow - (response_tokens - keep_response)
        if self.prompt_overflow == "error" or prompt_cut > user_end - prompt_start:
            fixed = prompt_start + (prefix_len - user_end) + (len(ids) - closing_start)
            raise PromptTooLongError(
                f"request {index}: the prompt takes {prefix_len - prompt_start} tokens beside {fixed} of system "
                f"prompt and template, leaving no room for the response within max_length={self.max_length}; "
                "raise --max-length"
                + (
                    " or allow prompt truncation (--prompt-overflow truncate)"
                    if self.prompt_overflow == "error"
                    else ""
                ),
                index,
            )
        kept = [
            *ids[: user_end - prompt_cut],
            *ids[user_end:prefix_len],
            *ids[prefix_len : prefix_len + keep_response],
            *ids[closing_start:],
        ]
        return RenderedSequence(
            kept, system_len, prefix_len - prompt_cut, truncated_tokens=overflow, prompt_truncated_tokens=prompt_cut
        )


@dataclass(frozen=True)
class _CharBounds:
    prompt_start: int  # end of the system turn and the first prompt header (shared by one system prompt)
    has_system: bool
    user_end: int  # end of the last prompt turn's content: prompt truncation cuts before here
    prefix_end: int  # end of the assistant header
    response_end: int  # start of the template's closing tokens


def _prompt_key(prompt: Prompt) -> tuple:
    """Hashable form of a prompt, for the probe cache."""
    if isinstance(prompt, str):
        return ("text", prompt)
    return ("messages", *((m["role"], m["content"]) for m in prompt))


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (binary search over C-level slice compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str) -> int:
    """Length of the longest common suffix."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _default_bos(tokenizer) -> str:
    """The BOS text the tokenizer puts first by default (a base Llama does; Qwen has none), else ``""``.

    Rendering tokenises with ``add_special_tokens=False`` (chat templates write their own BOS), so without a
    template the BOS the model was trained with has to be written into the text, once.
    """
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None or not tokenizer.bos_token:
        return ""
    ids = tokenizer("a")["input_ids"]
    return tokenizer.bos_token if ids and ids[0] == bos_id else ""


def _fallback_template(messages: list[Message]) -> str:
    """Plain-text layout for tokenizers without a chat template (the reference scripts' fallback)."""
    labels = {"system": "System", "user": "User", "assistant": "Assistant"}
    return "\n\n".join(f"{labels.get(m['role'], m['role'].title())}:\n{m['content']}" for m in messages)
