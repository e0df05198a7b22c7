"""Chat turns as RL clients send them -> the plain ``{"role", "content"}`` turns the renderer takes, by one rule.

The rule is the same on every entry point that takes a conversation (``/v1/rewards``, ``/classify`` messages,
``/get_reward --rerender``, the TRL and verl integrations):

* ``content`` is a string, or a list of parts (OpenAI/TRL style); the parts of type ``text`` are joined with
  ``"\\n"``, as vLLM joins them. Other part types (images, audio) are refused: a code reward model reads text.
  ``None`` (an assistant turn that only calls tools) is empty text.
* keys other than ``role`` and ``content`` (``name``, ``tool_calls``, ``reasoning_content``, ...) are ignored.
* with criteria, the policy's system turns are *replaced* by the criterion prompt, so the reward model sees the
  system prompt it was trained with; the replacement is counted and reported. Without criteria the conversation
  is scored as given, system turn included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from themis_rm.pairs import Message, Prompt, ScoreRequest

TEXT_PART_SEPARATOR = "\n"


def text_content(content: Any) -> str:
    """One turn's content as text (see the module docstring).

    Raises:
        ValueError: content that is not a string, ``None`` or a list of text parts.
    """
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        raise ValueError(f"content must be a string or a list of parts, got {type(content).__name__}")
    texts = []
    for i, part in enumerate(content):
        if isinstance(part, str):  # a bare string among parts, as some clients send
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise ValueError(f"content part {i} must be {{'type': 'text', 'text': str}}, got type {kind!r}")
        texts.append(part["text"])
    return TEXT_PART_SEPARATOR.join(texts)


def plain_turns(turns: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Turns reduced to role and text content, unknown keys dropped.

    Raises:
        ValueError: a turn that is not a mapping with a string ``role``, or content :func:`text_content` refuses
            (the message names the turn).
    """
    plain = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("role"), str):
            raise ValueError(f"message {i} must be an object with a string 'role'")
        try:
            plain.append({"role": turn["role"], "content": text_content(turn.get("content"))})
        except ValueError as exc:
            raise ValueError(f"message {i}: {exc}") from None
    return plain


def without_system(turns: Sequence[Message], system: str | None) -> tuple[list[Message], bool]:
    """The turns to render under criterion prompt ``system``, and whether a system turn of the policy was replaced.

    ``system`` None (no criteria): the conversation as given. Otherwise every system turn is removed, because the
    renderer puts ``system`` in front (``ScoreRequest.system``).
    """
    if system is None:
        return list(turns), False
    kept = [turn for turn in turns if turn["role"] != "system"]
    return kept, len(kept) < len(turns)


class SystemOnlyConversationError(ValueError):
    """Conversation ``index`` has nothing left to score once its system turns give way to a criterion prompt."""

    def __init__(self, index: int) -> None:
        super().__init__(f"conversation {index} has only system turns, which the criterion prompt replaces")
        self.index = index


def criterion_requests(
    prompts: Sequence[Prompt], responses: Sequence[str], system: str | None
) -> tuple[list[ScoreRequest], list[bool]]:
    """``ScoreRequest``s of each (prompt, response) under criterion prompt ``system`` by the rule above, and which
    prompts had a system turn replaced.

    Raises:
        SystemOnlyConversationError: a conversation made only of system turns, under criteria.
    """
    requests, replaced = [], []
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        replaced_here = False
        if not isinstance(prompt, str):
            prompt, replaced_here = without_system(prompt, system)
            if not prompt:
                raise SystemOnlyConversationError(i)
        requests.append(ScoreRequest(prompt, response, system))
        replaced.append(replaced_here)
    return requests, replaced
