"""Chat-formatted policy strings -> (prompt turns, response), so the reward model can render them its own way.

OpenRLHF sends each rollout as ONE string already rendered with the *policy's* chat template, e.g. (ChatML)::

    <|im_start|>system\\nYou are Qwen...<|im_end|>\\n<|im_start|>user\\nWrite f.<|im_end|>\\n
    <|im_start|>assistant\\ndef f(): ...<|im_end|>\\n<|endoftext|>

The split, in order of preference:

1. when the caller also sends the prompt string (OpenRLHF's ``prompts``) and the query starts with it, the
   response is everything after it;
2. otherwise the response starts after the LAST occurrence of the assistant header (``assistant_marker``,
   default Qwen/ChatML ``<|im_start|>assistant\\n``).

The prompt part is cut into turns at every header of the same shape as the marker (the marker with ``assistant``
replaced by any role name), text before the first header (a BOS) is dropped, and end-of-turn markers (with the
whitespace after them) are stripped from the end of each turn and of the response; a turn's own trailing
whitespace is kept, so a response re-renders exactly as ``themis score`` renders it. An EMPTY think block opening
the response (``<think>\n\n</think>\n\n``, what Qwen3's generation prompt emits with thinking off) is template
boilerplate, not response text: it is removed, and the reward model's own template adds its own if it has one
(Qwen3's does). A think block with content is kept as part of the response. Nothing in the string is ever evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from themis_rm.pairs import Message
from themis_rm.serve.errors import RequestFieldError

_EMPTY_THINK = re.compile(r"\A\s*<think>\s*</think>\s*")


@dataclass(frozen=True)
class SplitQuery:
    """One policy string taken apart: its prompt turns (the policy's system turn included) and the response."""

    turns: list[Message]
    response: str


class QuerySplitter:
    """Splits policy strings on a configurable assistant header (see the module docstring).

    Args:
        assistant_marker: the policy template's assistant header; must contain ``assistant``.
        end_markers: strings stripped from the end of every turn and of the response.
    """

    def __init__(self, assistant_marker: str, end_markers: Sequence[str]) -> None:
        before, _, after = assistant_marker.partition("assistant")
        self.assistant_marker = assistant_marker
        self._header = re.compile(re.escape(before) + r"([A-Za-z_][\w-]*)" + re.escape(after))
        self._end_markers = tuple(m for m in end_markers if m)

    def split(self, query: str, prompt: str | None, param: str) -> SplitQuery:
        """Split one query; ``param`` (``query[3]``) names it in errors.

        Raises:
            RequestFieldError: no prompt prefix and no assistant header, or no user turn before it.
        """
        if prompt is not None and prompt and query.startswith(prompt):
            prompt_text, response = prompt, query[len(prompt) :]
        else:
            at = query.rfind(self.assistant_marker)
            if at < 0:
                raise RequestFieldError(
                    param,
                    f"has no assistant header {self.assistant_marker!r} to split prompt from response "
                    "(set --assistant-marker to the policy template's header, or send 'prompts')",
                )
            prompt_text, response = query[:at], query[at + len(self.assistant_marker) :]
        prompt_text = prompt_text.removesuffix(self.assistant_marker)
        turns = self._turns(prompt_text)
        if not any(turn["role"] == "user" for turn in turns):
            raise RequestFieldError(param, "has no user turn before the response (cannot re-render it)")
        response = _EMPTY_THINK.sub("", self._strip_end(response), count=1)
        return SplitQuery(turns, response)

    def _turns(self, text: str) -> list[Message]:
        headers = list(self._header.finditer(text))
        turns = []
        for i, header in enumerate(headers):
            end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
            turns.append({"role": header.group(1), "content": self._strip_end(text[header.end() : end])})
        return turns

    def _strip_end(self, text: str) -> str:
        """Remove trailing end-of-turn/padding markers and the whitespace the template put after them, repeatedly
        (``<|im_end|>\\n<|endoftext|>``); whitespace before the first marker is the turn's own and is kept (it
        was stripped, and the re-rendered response then scored differently from ``themis score``'s)."""
        while True:
            trimmed = text.rstrip()
            marker = next((m for m in self._end_markers if trimmed.endswith(m)), None)
            if marker is None:
                return text
            text = trimmed[: -len(marker)]
