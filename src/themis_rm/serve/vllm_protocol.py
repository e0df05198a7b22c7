"""vLLM's pooling-API schemas as a reward model answers them: ``/classify``, ``/score``, ``/rerank``, ``/pooling``,
``/v1/models``. Field names, defaults and answer layouts follow vLLM's OpenAI-compatible server, so a client written
against vLLM (verl's reward loop, a reranking script) works unchanged; unknown fields are ignored, as vLLM ignores
them.

Read from vLLM 0.34.0's ``vllm/entrypoints/pooling/`` (and the sdists back to 0.11.0 for the older field names). A
reward model has one label, so every answer carries one number per sequence: its sigmoid, which is what vLLM's
classify pooler gives a one-label model, or the raw reward with ``use_activation: false`` (also the older
``activation``/``softmax``, which vLLM >= 0.16 no longer reads). Response ids carry the request's ``X-Request-Id``,
as vLLM's do. What the server renders itself (``messages``, score and rerank pairs) goes
through the reward model's own template under the server's ``--criteria``, by the one conversation rule of
:mod:`themis_rm.conversation`; requests never bring templates.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from scipy.special import expit

from themis_rm.conversation import text_content
from themis_rm.errors import MissingExtraError
from themis_rm.pairs import Message, is_blank
from themis_rm.serve.protocol import ChatTurn, Usage, not_blank

if TYPE_CHECKING:
    from themis_rm.serve.service import Scored

try:
    from pydantic import (
        AfterValidator,
        AliasChoices,
        BaseModel,
        BeforeValidator,
        ConfigDict,
        Field,
        StrictBool,
        StrictInt,
        StrictStr,
        model_validator,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("pydantic", "serve") from exc


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(x) is int for x in value)


def _classify_inputs(value: Any) -> list[str] | list[list[int]]:
    """vLLM's ``input``: a string, a list of strings, token ids, or a list of token-id lists."""
    value = [value] if isinstance(value, str) or _is_ids(value) else value
    if isinstance(value, list) and (all(isinstance(x, str) for x in value) or all(_is_ids(x) for x in value)):
        return value
    raise ValueError("Input should be a valid list of strings, or token ids (a list of ints, or a list of those)")


ClassifyInput = Annotated[Any, BeforeValidator(_classify_inputs)]


def _stamp(kind: str, request_id: str | None) -> dict[str, Any]:
    """vLLM's ``id`` (``<kind>-<request id>``) and ``created``."""
    return {"id": f"{kind}-{request_id or uuid.uuid4().hex}", "created": int(time.time())}


def _score_input(value: Any) -> Any:
    """vLLM's ``ScoreInput``: a string, or ``{"content": [parts]}`` (text parts only, for a reward model)."""
    if isinstance(value, dict) and "content" in value:
        return text_content(value["content"])
    return value


def _as_inputs(value: Any) -> Any:
    """One score input stands for a list of one."""
    return [value] if isinstance(value, str | dict) else value


ScoreText = Annotated[StrictStr, BeforeValidator(_score_input), AfterValidator(not_blank)]
ScoreTexts = Annotated[list[ScoreText], BeforeValidator(_as_inputs)]


def _values(rewards: list[float], sigmoid: bool) -> list[float]:
    return expit(np.asarray(rewards, dtype=np.float64)).tolist() if sigmoid else list(rewards)


class VllmRequest(BaseModel):
    """The fields every vLLM pooling request shares: ``model`` (echoed; one model here), the activation switch
    and ``truncate_prompt_tokens``."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    use_activation: StrictBool | None = None  # vLLM >= 0.11.2
    activation: StrictBool | None = None  # vLLM < 0.11.2
    softmax: StrictBool | None = None  # older still
    truncate_prompt_tokens: StrictInt | None = Field(None, ge=-1)  # keep the last k tokens; -1: the server's budget

    @model_validator(mode="after")
    def _check_truncate(self) -> VllmRequest:
        if self.truncate_prompt_tokens == 0:
            raise ValueError("truncate_prompt_tokens must be >= 1, or -1 for the server's --max-length")
        return self

    @property
    def max_tokens(self) -> int | None:
        """The request's own token budget (None or -1: the server's)."""
        return None if self.truncate_prompt_tokens in (None, -1) else self.truncate_prompt_tokens

    def sigmoid(self, default: bool = True) -> bool:
        """Whether to answer the sigmoid: the caller's choice, else vLLM's default for the endpoint."""
        for choice in (self.use_activation, self.activation, self.softmax):
            if choice is not None:
                return choice
        return default

    def check_rendered_budget(self) -> None:
        """Conversations the server renders keep their end within ``--max-length`` (the renderer's cut, which
        keeps the end-of-turn token); a per-request token cut of a rendered chat is refused, not half-applied."""
        if self.max_tokens is not None:
            raise ValueError("truncate_prompt_tokens applies to 'input' only; rendered chats use --max-length")


class ChatForm(BaseModel):
    """vLLM's chat form (``messages``), for a reward model: the conversation must end with the response to score
    (an assistant turn), and is rendered with the reward model's own template, so requests bring no template."""

    messages: list[ChatTurn] | None = Field(None, min_length=1)
    add_generation_prompt: StrictBool = False
    continue_final_message: StrictBool = False
    chat_template: StrictStr | None = None
    chat_template_kwargs: dict[str, Any] | None = None

    def check_chat(self) -> None:
        if self.messages is None:
            return
        refused = {
            "chat_template": self.chat_template is not None,
            "chat_template_kwargs": bool(self.chat_template_kwargs),
            "add_generation_prompt": self.add_generation_prompt,
            "continue_final_message": self.continue_final_message,
        }
        for name, given in refused.items():
            if given:
                raise ValueError(
                    f"{name} is not supported: a reward model scores a finished conversation rendered "
                    "with its own template"
                )
        if self.messages[-1].role != "assistant":
            raise ValueError("messages must end with the assistant turn to score")
        if is_blank(self.messages[-1].content):
            raise ValueError("the assistant turn to score is empty: nothing to score (themis score refuses it too)")

    def conversation(self) -> tuple[list[Message], str]:
        """(prompt turns, response) of ``messages``."""
        turns = [{"role": t.role, "content": t.content} for t in self.messages]
        return turns[:-1], turns[-1]["content"]


# ---------------------------------------------------------------------------------------------- /classify
class ClassifyRequest(VllmRequest, ChatForm):
    """vLLM's classify API, both forms: ``input`` (what verl posts: text rendered with the reward model's template,
    its BOS stripped; or token ids, scored as given) or ``messages`` (one conversation, rendered here).

    ``add_special_tokens`` defaults as in vLLM: true for ``input`` (the BOS added once), false for ``messages``.
    """

    input: ClassifyInput | None = Field(None, min_length=1)
    add_special_tokens: StrictBool | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ClassifyRequest:
        if (self.input is None) == (self.messages is None):
            raise ValueError("give exactly one of 'input' (text or token ids) or 'messages' (a conversation)")
        if self.messages is not None:
            self.check_chat()
            self.check_rendered_budget()
            if self.add_special_tokens:
                raise ValueError("add_special_tokens must be false with messages: the chat template adds them")
        return self

    @property
    def special_tokens(self) -> bool:
        return True if self.add_special_tokens is None else self.add_special_tokens


class ClassifyData(BaseModel):
    index: int
    label: str = "LABEL_0"
    probs: list[float]
    num_classes: int = 1


class ClassifyResponse(BaseModel):
    id: str
    object: str = "list"
    created: int
    model: str
    data: list[ClassifyData]
    usage: Usage

    @classmethod
    def of(cls, model: str, scored: Scored, sigmoid: bool, request_id: str | None) -> ClassifyResponse:
        data = [ClassifyData(index=i, probs=[value]) for i, value in enumerate(_values(scored.rewards, sigmoid))]
        return cls(**_stamp("classify", request_id), model=model, data=data, usage=Usage.of(scored.tokens))


# ------------------------------------------------------------------------------------------------- /pooling
class PoolingRequest(ClassifyRequest):
    """vLLM's pooling API on a reward model (task ``classify``): each sequence's pooled output, ``[sigmoid]`` or
    ``[reward]`` with ``use_activation: false``, as vLLM answers for a one-label sequence classifier."""

    encoding_format: StrictStr = "float"
    task: StrictStr | None = None

    @model_validator(mode="after")
    def _check_pooling(self) -> PoolingRequest:
        if self.encoding_format != "float":
            raise ValueError("encoding_format must be 'float' (one reward per sequence)")
        if self.task not in (None, "classify"):
            raise ValueError(f"task {self.task!r} is not served: a reward model pools for 'classify'")
        return self


class PoolingData(BaseModel):
    index: int
    object: str = "pooling"
    data: list[float]


class PoolingResponse(BaseModel):
    id: str
    object: str = "list"
    created: int
    model: str
    data: list[PoolingData]
    usage: Usage

    @classmethod
    def of(cls, model: str, scored: Scored, sigmoid: bool, request_id: str | None) -> PoolingResponse:
        data = [PoolingData(index=i, data=[value]) for i, value in enumerate(_values(scored.rewards, sigmoid))]
        return cls(**_stamp("pooling", request_id), model=model, data=data, usage=Usage.of(scored.tokens))


# --------------------------------------------------------------------------------------------------- /score
class ScoringFields(VllmRequest):
    """vLLM's scoring options that change what a cross-encoder sees; a reward model renders the pair as a chat with
    its own template, so a request that sets them is refused rather than scored differently than asked."""

    max_tokens_per_query: StrictInt = 0
    max_tokens_per_doc: StrictInt = 0
    instruction: StrictStr | None = None
    chat_template_kwargs: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check_scoring(self) -> ScoringFields:
        self.check_rendered_budget()
        for name in ("max_tokens_per_query", "max_tokens_per_doc", "instruction", "chat_template_kwargs"):
            if getattr(self, name):
                raise ValueError(
                    f"{name} is not supported: the pair is rendered as a chat with the reward model's "
                    "template, cut by --max-length"
                )
        return self


class ScoreRequest(ScoringFields):
    """vLLM's score API: ``queries`` with ``documents`` (or ``items``; ``data_1``/``data_2``; before vLLM 0.16 only
    ``text_1``/``text_2``). For a reward model a query is the prompt and a document the response: 1:1, 1:N or N:N,
    as in vLLM."""

    queries: ScoreTexts = Field(validation_alias=AliasChoices("queries", "text_1", "data_1"), min_length=1)
    documents: ScoreTexts = Field(validation_alias=AliasChoices("documents", "items", "text_2", "data_2"), min_length=1)

    @model_validator(mode="after")
    def _pairing(self) -> ScoreRequest:
        if len(self.queries) not in (1, len(self.documents)):
            raise ValueError(
                f"Input lengths must be either 1:1, 1:N or N:N; got {len(self.queries)} queries for "
                f"{len(self.documents)} documents"
            )
        return self

    def pairs(self) -> tuple[list[str], list[str]]:
        """(prompts, responses), the one query repeated for every document."""
        queries = self.queries * len(self.documents) if len(self.queries) == 1 else self.queries
        return list(queries), list(self.documents)


class ScoreData(BaseModel):
    index: int
    object: str = "score"
    score: float


class ScoreResponse(BaseModel):
    id: str
    object: str = "list"
    created: int
    model: str
    data: list[ScoreData]
    usage: Usage

    @classmethod
    def of(cls, model: str, scored: Scored, sigmoid: bool, request_id: str | None) -> ScoreResponse:
        data = [ScoreData(index=i, score=value) for i, value in enumerate(_values(scored.rewards, sigmoid))]
        return cls(**_stamp("score", request_id), model=model, data=data, usage=Usage.of(scored.tokens))


# -------------------------------------------------------------------------------------------------- /rerank
class RerankRequest(ScoringFields):
    """vLLM's (Jina/Cohere-style) rerank API: candidate responses (``documents``) to one prompt (``query``), best
    first; ``top_n`` > 0 keeps that many. Best-of-n selection with a reward model."""

    query: ScoreText
    documents: ScoreTexts = Field(min_length=1)
    top_n: StrictInt = Field(0, ge=0)


class RerankDocument(BaseModel):
    text: str
    multi_modal: None = None


class RerankResult(BaseModel):
    index: int
    document: RerankDocument
    relevance_score: float


class RerankUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class RerankResponse(BaseModel):
    id: str
    model: str
    usage: RerankUsage
    results: list[RerankResult]

    @classmethod
    def of(cls, model: str, request: RerankRequest, scored: Scored, request_id: str | None) -> RerankResponse:
        values, tokens = _values(scored.rewards, request.sigmoid()), scored.tokens
        order = sorted(range(len(values)), key=lambda i: -values[i])
        kept = order[: request.top_n] if request.top_n else order
        results = [
            RerankResult(index=i, document=RerankDocument(text=request.documents[i]), relevance_score=values[i])
            for i in kept
        ]
        return cls(
            id=_stamp("score", request_id)["id"],  # vLLM's rerank ids are score ids
            model=model,
            usage=RerankUsage(prompt_tokens=tokens, total_tokens=tokens),
            results=results,
        )


# ----------------------------------------------------------------------------------------------- /v1/models
class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int
    owned_by: str = "themis-rm"
    root: str
    parent: str | None = None
    max_model_len: int
    permission: list[dict[str, Any]] = Field(default_factory=list)


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]
