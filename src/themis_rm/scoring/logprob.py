"""Causal-LM log-probability rewards: which tokens are read, what is appended first, and the model wrapper.

A judge-style LM answers a question, so its scores mean something only where it would answer: after a follow-up
user turn and the generation prompt, not after the response's ``<|im_end|>``. :func:`answer_suffix` finds that text
with the model's own chat template; :class:`LogprobRewardModel` appends its ids after each row's real tokens and
reads every attribute's score there. Appending after the renderer has truncated the response means truncation can
never cut the question (the renderer's budget leaves room: :attr:`LoadedModel.reserved_tokens`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from themis_rm.errors import ThemisInputError
from themis_rm.render import ChatRenderer, build_messages
from themis_rm.scoring.engine import plan_batches
from themis_rm.scoring.models import LoadedModel
from themis_rm.scoring.readout import build_spec, pool_positions, raise_problems, single_token_id

logger = logging.getLogger(__name__)

_PROBE_PROMPT = "\u2063THEMIS-PROBE-PROMPT\u2063"
_PROBE_RESPONSE = "\u2063THEMIS-PROBE-RESPONSE\u2063"


# ------------------------------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class LogprobAttribute:
    """One criterion read at the answer position. One valid attribute (as JSON)::

        {"name": "secure", "question": "Is the code above secure? Answer Yes or No.", "weight": 0.5}

    An attribute that names none of ``yes``, ``no``, ``logit_token``, ``logit_token_id`` reads the spec's tokens.
    """

    name: str
    """Column name of this attribute's score; unique within the spec."""
    yes: str | None = None
    """Token text counted for the response (give ``no`` with it); must tokenise to exactly one id."""
    no: str | None = None
    """Token text counted against the response; must tokenise to exactly one id."""
    logit_token: str | None = None
    """Read this token's raw logit instead of a yes/no difference."""
    logit_token_id: int | None = None
    """Read this token id's raw logit instead of a yes/no difference."""
    weight: float = 1.0
    """This attribute's factor in the reward, a weighted sum over attributes."""
    question: str | None = None
    """This attribute's own follow-up question (one more forward pass); None: the spec's; ``""``: none."""
    suffix: str | None = None
    """This attribute's own raw suffix; None: the spec's; ``""``: none."""

    def __post_init__(self) -> None:
        problems = _text_problems({"name": self.name}, optional=False)
        if isinstance(self.name, str) and not self.name.strip():
            problems.append("name must not be empty")
        texts = {k: getattr(self, k) for k in ("yes", "no", "logit_token", "question", "suffix")}
        problems += _text_problems(texts, optional=True) + _token_problems(self)
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float) or not math.isfinite(self.weight):
            problems.append(f"weight must be a finite number, got {self.weight!r}")
        if (self.yes is None) != (self.no is None) and self.logit_token is None and self.logit_token_id is None:
            problems.append("give yes and no together (or neither, to read the spec's tokens)")
        if (self.yes is not None or self.no is not None) and (self.logit_token, self.logit_token_id) != (None, None):
            problems.append("give yes/no or a logit token, not both")
        raise_problems(f"attribute {self.name!r}", problems)

    @property
    def names_tokens(self) -> bool:
        """Whether this attribute chooses its own tokens (else it reads the spec's)."""
        return any(v is not None for v in (self.yes, self.no, self.logit_token, self.logit_token_id))


@dataclass(frozen=True)
class LogprobSpec:
    """Which next-token scores of a causal LM make the reward, and what is appended before they are read.

    With no ``attributes`` the spec's own tokens give one score (the original format, still valid:
    ``{"yes": " Yes", "no": " No"}`` or ``{"logit_token_id": 0}``). With attributes, each gives a score ``s_a``
    (``log p(yes_a) - log p(no_a)``, or the raw logit) read after its own question/suffix, and the reward is the
    weighted sum ``sum_a weight_a * s_a`` (not a mean: weights 0.5/0.5 average two scores);
    :func:`score_attributes` returns the ``(N, A)`` scores. One valid spec (as JSON)::

        {"question": "Is the response above correct and secure? Answer Yes or No.",
         "yes": " Yes", "no": " No",
         "attributes": [{"name": "overall", "weight": 1.0},
                        {"name": "secure", "question": "Is the code above secure? Answer Yes or No.", "weight": 0.5},
                        {"name": "verdict_token", "logit_token": " Yes", "weight": 0.1}]}
    """

    yes: str = " Yes"
    """Token text whose log-probability counts for the response; must tokenise to exactly one id."""
    no: str = " No"
    """Token text whose log-probability counts against it; must tokenise to exactly one id."""
    logit_token: str | None = None
    """Read this token's raw logit instead of the yes/no log-probability difference."""
    logit_token_id: int | None = None
    """Read this token id's raw logit (Nemotron-70B-Reward: 0) instead of the difference."""
    question: str | None = None
    """A follow-up user turn after the response, rendered with the tokenizer's chat template plus its generation
    prompt (needs a chat template); None reads right after the conversation's closing tokens."""
    suffix: str | None = None
    """Raw text appended after the question's generation prompt (or after the conversation), tokenised on its own:
    e.g. Qwen3's empty think block ``"<think>\\n\\n</think>\\n\\n"`` or ``"Verdict:"``."""
    attributes: tuple[LogprobAttribute, ...] = ()
    """Several scores, weighted into the reward; empty: one score from the spec's own tokens, weight 1."""

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "lm-logprob spec") -> LogprobSpec:
        """Build from JSON-like data; ``attributes`` is a list of :class:`LogprobAttribute` objects."""
        data = dict(data)
        if "attributes" in data:
            data["attributes"] = _read_attributes(data["attributes"], source)
        return build_spec(cls, data, source)

    def __post_init__(self) -> None:
        problems = _text_problems({"yes": self.yes, "no": self.no}, optional=False)
        texts = {"logit_token": self.logit_token, "question": self.question, "suffix": self.suffix}
        problems += _text_problems(texts, optional=True) + _token_problems(self)
        if not all(isinstance(a, LogprobAttribute) for a in self.attributes):
            problems.append("attributes must be LogprobAttribute objects (build from dicts with LogprobSpec.from_dict)")
        names = [a.name for a in self.attributes if isinstance(a, LogprobAttribute)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"attribute names must be unique, {duplicates} appear more than once")
        raise_problems("lm-logprob spec", problems)


def _read_attributes(raw: object, source: str) -> tuple[LogprobAttribute, ...]:
    """``attributes`` from JSON: every bad entry is reported at once, by its index."""
    if not isinstance(raw, list | tuple) or not raw:
        raise ThemisInputError(f"{source}: attributes must be a non-empty list of objects, got {raw!r}")
    problems, attributes = [], []
    for index, item in enumerate(raw):
        where = f"attributes[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f'{where} must be an object like {{"name": "correct"}}, got {item!r}')
            continue
        try:
            attributes.append(build_spec(LogprobAttribute, dict(item), where))
        except ThemisInputError as exc:
            problems.append(str(exc))
    raise_problems(source, problems)
    return tuple(attributes)


def _text_problems(values: Mapping[str, object], optional: bool) -> list[str]:
    return [
        f"{key} must be a string, got {value!r}"
        for key, value in values.items()
        if not isinstance(value, str) and not (optional and value is None)
    ]


def _token_problems(spec: LogprobSpec | LogprobAttribute) -> list[str]:
    problems = []
    if spec.logit_token is not None and spec.logit_token_id is not None:
        problems.append("give logit_token or logit_token_id, not both")
    token_id = spec.logit_token_id
    if token_id is not None and (isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0):
        problems.append(f"logit_token_id must be a token id (an integer >= 0), got {token_id!r}")
    return problems


# ---------------------------------------------------------------------------------------------------- wrapper
def append_suffix(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, suffix_ids: Sequence[int], pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's real tokens followed by ``suffix_ids``, right-padded: ``(B, T')`` ids and mask.

    Read from the mask, so left- or right-padded input both work; an empty suffix returns the input as is.
    """
    if not suffix_ids:
        return input_ids, attention_mask
    keep = attention_mask.bool()
    lengths = keep.sum(dim=-1, keepdim=True)
    steps = torch.arange(int(lengths.max()) + len(suffix_ids), device=input_ids.device)
    real = steps < lengths
    mask = steps < lengths + len(suffix_ids)
    out = torch.full(mask.shape, pad_id, dtype=input_ids.dtype, device=input_ids.device)
    out[real] = input_ids[keep]
    out[mask & ~real] = torch.as_tensor(suffix_ids, dtype=input_ids.dtype, device=input_ids.device).repeat(len(out))
    return out, mask.long()


@dataclass(frozen=True)
class LogprobReadout:
    """One attribute resolved against a tokenizer: the ids appended before reading, and the ids read."""

    name: str
    suffix_ids: tuple[int, ...]
    yes_id: int | None
    no_id: int | None
    logit_id: int | None
    weight: float

    @property
    def read_ids(self) -> tuple[int, ...]:
        return (self.logit_id,) if self.logit_id is not None else (self.yes_id, self.no_id)


class LogprobRewardModel(nn.Module):
    """A causal LM's next-token scores at the answer position: ``(B, A)`` attributes, ``(B, 1)`` weighted reward.

    Each row's real tokens get an attribute's answer suffix appended (one forward per distinct suffix; attributes
    sharing a question share it), and only the last position's hidden state goes through ``lm_head`` (``(B, V)``,
    not ``(B, T, V)``); Gemma-style ``final_logit_softcapping`` is applied as the model's own forward would. The
    appended tokens are not in the engine's token counters or its ``batch_tokens`` plan.

    Args:
        lm: an ``AutoModelForCausalLM``.
        readouts: per attribute, reward column ``log_softmax[yes_id] - log_softmax[no_id]`` or ``logits[logit_id]``
            (fp32), read after ``suffix_ids``.
    """

    def __init__(self, lm: nn.Module, readouts: Sequence[LogprobReadout]) -> None:
        super().__init__()
        if lm.base_model is lm or lm.get_output_embeddings() is None:
            raise ThemisInputError(f"{type(lm).__name__}: lm-logprob needs a causal LM with a base model and lm_head")
        vocab = lm.get_output_embeddings().weight.shape[0]
        outside = [f"{r.name}: {i}" for r in readouts for i in r.read_ids if not 0 <= i < vocab]
        if outside:
            raise ThemisInputError(
                f"lm-logprob spec reads token ids {outside} outside the LM's vocabulary of {vocab}; fix logit_token_id"
            )
        self.lm = lm
        self.readouts = tuple(readouts)
        self.config = lm.config
        self.softcap = getattr(lm.config.get_text_config(), "final_logit_softcapping", None)
        self.register_buffer("weights", torch.tensor([r.weight for r in readouts]).unsqueeze(-1), persistent=False)
        self._groups: dict[tuple[int, ...], list[int]] = {}
        for column, readout in enumerate(self.readouts):
            self._groups.setdefault(readout.suffix_ids, []).append(column)

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.readouts)

    @property
    def reserved_tokens(self) -> int:
        """The longest suffix appended to a row: the renderer's budget leaves room for it."""
        return max(len(r.suffix_ids) for r in self.readouts)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SimpleNamespace:
        """Returns ``logits`` ``(B, 1)`` (the weighted sum) and ``attributes`` ``(B, A)``, both float32."""
        scores = self.attribute_scores(input_ids, attention_mask)
        return SimpleNamespace(logits=scores @ self.weights.to(scores.dtype), attributes=scores)

    def attribute_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Each attribute's score, ``(B, A)`` float32, columns in spec order."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        scores = torch.empty(len(input_ids), len(self.readouts), dtype=torch.float32, device=input_ids.device)
        for suffix_ids, columns in self._groups.items():
            logits = self._answer_logits(*append_suffix(input_ids, attention_mask, suffix_ids))
            logprobs = torch.log_softmax(logits, dim=-1)
            for column in columns:
                r = self.readouts[column]
                read = logits[:, r.logit_id] if r.logit_id is not None else logprobs[:, r.yes_id] - logprobs[:, r.no_id]
                scores[:, column] = read
        return scores

    def _answer_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, V)`` fp32 after each row's last real token."""
        hidden = self.lm.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        positions = pool_positions(attention_mask)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), positions]
        logits = self.lm.get_output_embeddings()(pooled).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


@torch.inference_mode()
def score_attributes(loaded: LoadedModel, sequences: Sequence[Sequence[int]], batch_tokens: int = 16384) -> np.ndarray:
    """Per-attribute scores ``(N, A)`` float64 (input order) of rendered sequences, for callers that keep them.

    Columns follow ``loaded.model.attribute_names``; ``scores @ weights`` is the reward the engine returns::

        rendered = scorer.renderer.render_many(requests)
        table = score_attributes(scorer.loaded, [r.input_ids for r in rendered])
    """
    model = loaded.model
    if not isinstance(model, LogprobRewardModel):
        raise ThemisInputError(f"per-attribute scores need --adapter lm-logprob, this model is {loaded.adapter!r}")
    scores = np.empty((len(sequences), len(model.readouts)), dtype=np.float64)
    lengths = [len(s) + model.reserved_tokens for s in sequences]
    for batch in plan_batches(lengths, batch_tokens):
        rows = [torch.as_tensor(sequences[i], dtype=torch.long) for i in batch]
        input_ids = pad_sequence(rows, batch_first=True, padding_value=loaded.tokenizer.pad_token_id)
        attention_mask = pad_sequence([torch.ones_like(r) for r in rows], batch_first=True)
        out = model.attribute_scores(input_ids.to(loaded.device), attention_mask.to(loaded.device))
        scores[batch] = out.cpu().numpy()
    return scores


# ------------------------------------------------------------------------------------------------ resolution
def resolve_readouts(tokenizer, spec: LogprobSpec) -> list[LogprobReadout]:
    """Every attribute's token ids and answer-suffix ids; collects every bad token or question, raises once."""
    problems: list[str] = []
    suffixes: dict[tuple[str, str], tuple[int, ...]] = {}
    readouts = []
    attributes = spec.attributes or (LogprobAttribute("reward"),)
    for index, attribute in enumerate(attributes):
        owner = attribute if attribute.names_tokens else spec
        where = f"attributes[{index}] ({attribute.name!r})." if owner is attribute else ""
        ids = _token_ids(tokenizer, owner, where, problems)
        question = spec.question if attribute.question is None else attribute.question
        suffix = spec.suffix if attribute.suffix is None else attribute.suffix
        key = (question or "", suffix or "")
        if key not in suffixes:
            try:
                suffixes[key] = tuple(tokenizer.encode(answer_suffix(tokenizer, *key), add_special_tokens=False))
            except ThemisInputError as exc:
                problems.append(str(exc))
                suffixes[key] = ()
        readouts.append(LogprobReadout(attribute.name, suffixes[key], *ids, float(attribute.weight)))
    raise_problems("lm-logprob spec", list(dict.fromkeys(problems)))
    return readouts


def _token_ids(tokenizer, owner: LogprobSpec | LogprobAttribute, what: str, problems: list[str]) -> tuple:
    """(yes_id, no_id, logit_id) of the spec or attribute that names the tokens; bad ones land in ``problems``."""

    def one(key: str) -> int:
        try:
            return single_token_id(tokenizer, getattr(owner, key), f"{what}{key}")
        except ThemisInputError as exc:
            problems.append(str(exc))
            return -1

    if owner.logit_token_id is not None:
        return None, None, owner.logit_token_id
    if owner.logit_token is not None:
        return None, None, one("logit_token")
    return one("yes"), one("no"), None


def answer_suffix(tokenizer, question: str = "", suffix: str = "") -> str:
    """Text that follows a rendered conversation so that the next token is the model's answer.

    ``question`` becomes what the chat template adds after the response for a following user turn plus the
    generation prompt; ``suffix`` follows verbatim. Found by rendering a probe conversation with and without the
    question (:meth:`ChatRenderer.apply_template`, the renderer's own call) and taking what follows the response's
    closing tokens, so a template that re-renders earlier turns (Qwen3 drops their think block) still works.

    Raises:
        ThemisInputError: a question for a tokenizer without a chat template, or a template that closes the response
            differently when a turn follows (write the turn out as ``suffix`` instead).
    """
    text = _question_turn(tokenizer, question) + suffix if question else suffix
    if text:
        _warn_on_boundary_merge(tokenizer, text)
    return text


def _question_turn(tokenizer, question: str) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ThemisInputError(
            f"question {question!r}: the tokenizer has no chat template to render a follow-up turn with; "
            "write the turn out as the spec's 'suffix' instead"
        )
    conversation = build_messages(_PROBE_PROMPT, _PROBE_RESPONSE)
    before = ChatRenderer(tokenizer).apply_template(conversation)
    after = tokenizer.apply_chat_template(
        [*conversation, {"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    closing = before[before.rindex(_PROBE_RESPONSE) + len(_PROBE_RESPONSE) :]
    tail = after[after.rindex(_PROBE_RESPONSE) + len(_PROBE_RESPONSE) :]
    if not tail.startswith(closing) or question not in tail[len(closing) :]:
        raise ThemisInputError(
            f"question {question!r}: the chat template closes the response with {closing!r} alone but "
            f"{tail[: len(closing) + 20]!r}... when a turn follows; write the turn out as the spec's 'suffix' instead"
        )
    return tail[len(closing) :]


def _warn_on_boundary_merge(tokenizer, text: str) -> None:
    """Warn when tokenising the suffix on its own splits differently from tokenising the whole text."""
    before = ChatRenderer(tokenizer).apply_template(build_messages(_PROBE_PROMPT, _PROBE_RESPONSE))
    joint = tokenizer.encode(before + text, add_special_tokens=False)
    split = tokenizer.encode(before, add_special_tokens=False) + tokenizer.encode(text, add_special_tokens=False)
    if joint != split:
        logger.warning(
            "lm-logprob suffix %r is appended as its own tokens; tokenising the whole text would merge it with "
            "the conversation's closing tokens differently (e.g. newlines); start it at a special token to avoid it",
            text,
        )
