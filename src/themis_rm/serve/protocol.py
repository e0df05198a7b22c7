"""Schemas of the themis-shaped endpoints (OpenRLHF's ``/get_reward``, the structured ``/v1/rewards``); the routes
only validate, call, and answer.

One valid request per endpoint::

    POST /get_reward {"query": ["<|im_start|>user\\nWrite f.<|im_end|>\\n<|im_start|>assistant\\ndef f(): ..."],
                      "prompts": ["<|im_start|>user\\nWrite f.<|im_end|>\\n<|im_start|>assistant\\n"]}
    POST /v1/rewards {"items": [{"prompt": "Write f.", "response": "def f(): ..."}],
                      "criteria": ["security", "runtime"]}

The vLLM-shaped endpoints (``/classify``, ``/score``, ``/rerank``, ``/pooling``) are in :mod:`.vllm_protocol`.
Strings are strict (a number where a string belongs is a 422 naming the field, never silently converted). The
OpenRLHF and vLLM shapes ignore unknown fields (``labels``, ``user``, ...), as their clients send extras; the
structured ``/v1/rewards`` refuses them at the item and request level, so a misspelt field is reported instead of
ignored (unknown keys of a chat turn are ignored, by the conversation rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from scipy.special import expit

from themis_rm.conversation import text_content
from themis_rm.errors import MissingExtraError
from themis_rm.pairs import ScoreRequest, is_blank

if TYPE_CHECKING:
    from themis_rm.serve.service import CriteriaScored

try:
    from pydantic import (
        AfterValidator,
        AliasChoices,
        BaseModel,
        BeforeValidator,
        ConfigDict,
        Field,
        StrictStr,
        model_validator,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("pydantic", "serve") from exc


def _as_list(value: Any) -> Any:
    """A lone string stands for a list of one (vLLM's ``input`` and our ``criteria`` take either)."""
    return [value] if isinstance(value, str) else value


StrOrList = Annotated[list[StrictStr], BeforeValidator(_as_list)]


class Usage(BaseModel):
    """Tokens scored (OpenAI/vLLM layout; nothing is generated)."""

    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0

    @classmethod
    def of(cls, tokens: int) -> Usage:
        return cls(prompt_tokens=tokens, total_tokens=tokens)


# ------------------------------------------------------------------------------------------- /get_reward
class GetRewardRequest(BaseModel):
    """OpenRLHF ``--remote_rm_url``: policy-formatted strings (older OpenRLHF sends ``queries``)."""

    model_config = ConfigDict(extra="ignore")

    query: list[StrictStr] = Field(validation_alias=AliasChoices("query", "queries"))
    prompts: list[StrictStr] | None = None  # the prompt part of each query, when the caller sends it


class GetRewardResponse(BaseModel):
    """``rewards``: raw reward-model scores; ``scores``: their sigmoid in (0, 1), for OpenRLHF's dynamic filtering."""

    rewards: list[float]
    scores: list[float]

    @classmethod
    def of(cls, rewards: list[float]) -> GetRewardResponse:
        return cls(rewards=rewards, scores=expit(np.asarray(rewards, dtype=np.float64)).tolist())


# ------------------------------------------------------------------------------------------- /v1/rewards
def _join_parts(value: Any) -> Any:
    """Text parts (and ``None``) become one string; anything else is left for ``StrictStr`` to judge."""
    return text_content(value) if value is None or isinstance(value, list) else value


TextContent = Annotated[StrictStr, BeforeValidator(_join_parts)]
"""A string, or a list of text parts joined (:func:`themis_rm.conversation.text_content`)."""


def not_blank(value: str) -> str:
    """Refuse a blank prompt or response, as ``themis score`` does (:func:`themis_rm.pairs.is_blank`)."""
    if is_blank(value):
        raise ValueError("is empty: nothing to score (themis score refuses a blank prompt or response too)")
    return value


Scorable = Annotated[TextContent, AfterValidator(not_blank)]
"""A prompt or response to score: text content that is not blank."""


class ChatTurn(BaseModel):
    """One turn: its role and text; other keys (``name``, ``tool_calls``, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    role: StrictStr
    content: TextContent = ""


class ScoreItem(BaseModel):
    """One response to score, after a prompt given as text or as a conversation (``messages``)."""

    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[StrictStr, AfterValidator(not_blank)] | None = None
    messages: list[ChatTurn] | None = Field(None, min_length=1)
    response: Scorable

    @model_validator(mode="after")
    def _one_prompt(self) -> ScoreItem:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' (text) or 'messages' (a conversation)")
        return self

    def to_request(self) -> ScoreRequest:
        prompt = self.prompt if self.prompt is not None else [t.model_dump() for t in self.messages]
        return ScoreRequest(prompt, self.response)


class ScoreItemsRequest(BaseModel):
    """Items plus criteria: a spec string (``"security,runtime"``: one combined prompt) or a list of specs
    (``["security", "runtime"]``: one score per spec); omitted: the server's ``--criteria``."""

    model_config = ConfigDict(extra="forbid")

    items: list[ScoreItem] = Field(min_length=1)
    criteria: StrOrList | None = Field(None, min_length=1)
    model: StrictStr | None = None


class ItemResult(BaseModel):
    index: int
    scores: dict[str, float]  # criteria label (``Security_Hardness``, ``Full``, ``none``) -> raw reward
    truncated_tokens: int
    replaced_system_turn: bool  # the item's system turn gave way to the criterion prompt


class ScoreItemsResponse(BaseModel):
    model: str
    criteria: list[str]
    results: list[ItemResult]
    usage: Usage

    @classmethod
    def of(cls, model: str, scored: CriteriaScored) -> ScoreItemsResponse:
        results = [
            ItemResult(
                index=i,
                scores=dict(zip(scored.labels, row.tolist(), strict=True)),
                truncated_tokens=scored.truncated_tokens[i],
                replaced_system_turn=scored.replaced_system[i],
            )
            for i, row in enumerate(scored.rewards)
        ]
        return cls(model=model, criteria=scored.labels, results=results, usage=Usage.of(scored.tokens))
