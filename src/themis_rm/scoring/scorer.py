"""The public scoring API: criteria -> system prompt -> rendered ids -> engine -> rewards in input order.

scorer = Scorer.from_pretrained("project-themis/Themis-RM-8B", dtype="bf16")
scorer.score(["Write is_palindrome(s)."], ["def is_palindrome(s): return s == s[::-1]"], criteria="runtime")
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from themis_rm.criteria import PromptPack, Selection
from themis_rm.errors import PromptTooLongError, ThemisInputError
from themis_rm.packs import load_prompt_pack
from themis_rm.pairs import PreferencePair, Prompt, ResponseRow, ScoreRequest
from themis_rm.provenance import package_versions
from themis_rm.render import ChatRenderer, RenderedSequence
from themis_rm.scoring.adapters import load_adapter
from themis_rm.scoring.config import ASPECT, ModelFields
from themis_rm.scoring.engine_choice import build_engines, choose_path
from themis_rm.scoring.models import LoadedModel

logger = logging.getLogger(__name__)

_UNBOUNDED = 10**8


@dataclass(frozen=True)
class ScoreOutput:
    """Rewards in input order, plus which inputs were truncated and by how many tokens.

    ``truncated_tokens`` counts every token cut (response and prompt); ``prompt_truncated_tokens`` the part of it
    cut from the prompt's end (``prompt_overflow="truncate"``), which changes the task the model sees.
    """

    rewards: np.ndarray
    truncated_tokens: np.ndarray
    prompt_truncated_tokens: np.ndarray

    @property
    def truncated_rows(self) -> list[int]:
        return np.flatnonzero(self.truncated_tokens).tolist()

    @property
    def prompt_truncated_rows(self) -> list[int]:
        return np.flatnonzero(self.prompt_truncated_tokens).tolist()


@dataclass(frozen=True)
class PairScores:
    """Chosen and rejected rewards for a list of pairs (input order) and their truncation counts.

    ``chosen_truncated``/``rejected_truncated`` are tokens cut per side (prompt cuts included); ``prompt_truncated``
    (bool, one per pair) marks pairs whose prompt end was cut on either side; ``identical`` (bool, one per pair)
    marks pairs whose two sides reached the model as the same input (equal texts, or a cut that removed the only
    difference): such a pair measures nothing, and callers drop and count it.
    """

    chosen: np.ndarray
    rejected: np.ndarray
    chosen_truncated: np.ndarray
    rejected_truncated: np.ndarray
    prompt_truncated: np.ndarray
    identical: np.ndarray

    @property
    def truncated_pairs(self) -> int:
        return int(np.count_nonzero((self.chosen_truncated > 0) | (self.rejected_truncated > 0)))

    @property
    def prompt_truncated_pairs(self) -> int:
        return int(np.count_nonzero(self.prompt_truncated))


class Scorer:
    """Scores (prompt, response) pairs with a reward model under a choice of criteria.

    Args:
        loaded: model, tokenizer and device from :func:`load_reward_model`.
        prompts: a :class:`PromptPack`, or a spec for :func:`load_prompt_pack`; loaded only when a criterion is
            asked for, so criteria-free scoring works without any pack.
        max_length: token budget per sequence; responses are truncated to fit, closing tokens kept.
        prompt_overflow: ``"truncate"`` (cut the prompt's end when it leaves no room) or ``"error"``.
        engine: ``"auto"`` (see :meth:`choose_path`), ``"prefix"``, ``"packed"`` or ``"padded"``; every path
            equals the plain forward (parity-tested).
        batch_tokens: padded tokens per forward pass (default 16k on CPU, 64k on GPU).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        prompts: PromptPack | str | os.PathLike | None = None,
        max_length: int = 4096,
        batch_tokens: int | None = None,
        prompt_overflow: str = "truncate",
        engine: str = "auto",
    ) -> None:
        self.loaded = loaded
        self._prompts = prompts
        self.max_length = capped_max_length(max_length, loaded.tokenizer, loaded.model.config)
        self.renderer = ChatRenderer(loaded.tokenizer, loaded.render_budget(self.max_length), prompt_overflow)
        self.engine_mode = engine
        self.engines = build_engines(loaded, engine, batch_tokens)
        self.engine, self.prefix_engine, self.packed_engine = self.engines  # padded, prefix, packed
        self.path_counts = {"padded": 0, "prefix": 0, "packed": 0}

    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        *,
        dtype: str = "auto",
        device: str = "auto",
        max_length: int = 4096,
        prompts: PromptPack | str | os.PathLike | None = None,
        batch_tokens: int | None = None,
        attn_implementation: str = "auto",
        revision: str | None = None,
        prompt_overflow: str = "truncate",
        adapter: str = "seqcls",
        adapter_spec: object | None = None,
        engine: str = "auto",
    ) -> Scorer:
        """Load ``model_id`` (hub id or local directory) through an adapter and build a scorer around it.

        ``adapter``: ``seqcls`` (one-label sequence classification), ``head`` (a custom scalar head described by
        ``adapter_spec``) or ``lm-logprob`` (log p(yes) − log p(no) of a causal LM); see :mod:`.adapters`.
        """
        loaded = load_adapter(
            model_id,
            adapter,
            spec=adapter_spec,
            dtype=dtype,
            device=device,
            attn_implementation=attn_implementation,
            revision=revision,
        )
        return cls(
            loaded,
            prompts=prompts,
            max_length=max_length,
            batch_tokens=batch_tokens,
            prompt_overflow=prompt_overflow,
            engine=engine,
        )

    @classmethod
    def from_job_config(cls, config: ModelFields, prompts: PromptPack | str | None) -> Scorer:
        """Build from a job config's shared model fields (a :class:`ModelConfig`, or the server's settings)."""
        return cls.from_pretrained(
            config.model,
            dtype=config.dtype,
            device=config.device,
            max_length=config.max_length,
            prompts=prompts,
            batch_tokens=config.batch_tokens,
            prompt_overflow=config.prompt_overflow,
            adapter=config.adapter,
            adapter_spec=config.adapter_spec,
            engine=config.engine,
        )

    # ---------------------------------------------------------------------------------------------- criteria
    @property
    def prompts(self) -> PromptPack:
        """The prompt pack, resolved on first use."""
        if not isinstance(self._prompts, PromptPack):
            self._prompts = load_prompt_pack(self._prompts)
        return self._prompts

    def selection(self, criteria: str | Sequence[str] | None) -> Selection:
        """Criteria spec -> canonical selection; ``None``/``"none"`` need no prompt pack."""
        if criteria is None or (isinstance(criteria, str) and criteria.strip().lower() == "none"):
            return ()
        return self.prompts.resolve(criteria)

    def system_prompt(self, criteria: str | Sequence[str] | None) -> str | None:
        """The evaluation-time system prompt for a criteria spec (None for no criteria)."""
        selection = self.selection(criteria)
        return self.prompts.eval_prompt(selection) if selection else None

    # ------------------------------------------------------------------------------------------------ scoring
    def score(
        self, prompts: Sequence[Prompt], responses: Sequence[str], criteria: str | Sequence[str] | None = None
    ) -> list[float]:
        """Rewards for ``responses[i]`` answering ``prompts[i]``, all under the same criteria."""
        system = self.system_prompt(criteria)
        requests = [ScoreRequest(p, r, system) for p, r in zip(prompts, responses, strict=True)]
        return self.score_requests(requests).rewards.tolist()

    def score_requests(
        self, requests: Sequence[ScoreRequest], progress: Callable[[int], None] | None = None
    ) -> ScoreOutput:
        """Render and score requests that already carry their system prompts."""
        return self._score_output(self.renderer.render_many(requests), progress)

    def _score_output(
        self, rendered: Sequence[RenderedSequence], progress: Callable[[int], None] | None
    ) -> ScoreOutput:
        rewards = self.score_rendered(rendered, progress)
        truncated = np.array([r.truncated_tokens for r in rendered], dtype=np.int64)
        prompt_truncated = np.array([r.prompt_truncated_tokens for r in rendered], dtype=np.int64)
        if truncated.any():
            logger.info(
                "truncated %d of %d inputs to max_length=%d (the prompt's end in %d of them)",
                np.count_nonzero(truncated),
                len(rendered),
                self.max_length,
                np.count_nonzero(prompt_truncated),
            )
        return ScoreOutput(rewards, truncated, prompt_truncated)

    def score_rendered(
        self, rendered: Sequence[RenderedSequence], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Rewards for already-rendered sequences, through the engine path :meth:`choose_path` picks.

        Identical token sequences are scored once and share the result, so they get bit-identical rewards on every
        engine: a pair whose chosen and rejected render the same is an exact tie whatever the batch or engine
        (batch composition moves a forward's result by an ulp or so).
        """
        slots: dict[tuple[int, ...], int] = {}  # token ids -> index into ``unique``
        unique: list[RenderedSequence] = []
        where = []
        for sequence in rendered:
            key = tuple(sequence.input_ids)
            if key not in slots:
                slots[key] = len(unique)
                unique.append(sequence)
            where.append(slots[key])
        if len(unique) == len(rendered):
            return self._score_unique(rendered, progress)
        rewards = self._score_unique(unique, progress)
        if progress is not None:
            progress(len(rendered) - len(unique))
        return rewards[np.asarray(where)]

    def _score_unique(self, rendered: Sequence[RenderedSequence], progress: Callable[[int], None] | None) -> np.ndarray:
        path = self.choose_path(rendered)
        self.path_counts[path] += 1
        if path == "prefix":
            return self.prefix_engine.score(rendered, progress)
        if path == "packed":
            return self.packed_engine.score([r.input_ids for r in rendered], progress)
        return self.engine.score([r.input_ids for r in rendered], progress)

    def render_formatted(
        self, texts: Sequence[str], add_special_tokens: bool = False, max_tokens: int | None = None
    ) -> list[RenderedSequence]:
        """Tokenise strings already rendered with a chat template as sent, keeping each one's END when too long.

        The reward is read at the last token, so the start is cut, to the renderer's budget: ``max_length`` less
        the tokens the adapter appends itself (an lm-logprob question), exactly as for rendered conversations.
        Whole pad tokens at either end are stripped (OpenRLHF sends padded decodes) unless pad is EOS; an empty
        text gives empty ``input_ids``, for the caller to reject by its own name. With ``add_special_tokens`` (as
        vLLM's ``/classify`` does by default) the BOS is added once: the tokenizer's own, and the one the chat
        template writes first even when the tokenizer does not add it (SmolLM2's ``<|im_start|>``, which verl strips
        as a BOS); a text that already starts with it keeps one, and a cut keeps it in front of the end.
        ``max_tokens`` narrows the budget for one call (vLLM's ``truncate_prompt_tokens``).
        """
        if not texts:
            return []
        tokenizer, budget = self.renderer.tokenizer, self._budget(max_tokens)
        pad = tokenizer.pad_token if tokenizer.pad_token != tokenizer.eos_token else None  # never strip the EOS
        encoded = tokenizer([_strip_token(t, pad) for t in texts], add_special_tokens=add_special_tokens)["input_ids"]
        bos = tokenizer.bos_token_id if add_special_tokens else None
        template_bos = self.renderer.leading_bos_id if add_special_tokens else None
        return [_keep_end(_with_bos(list(ids), template_bos), budget, bos) for ids in encoded]

    def render_token_ids(
        self, ids: Sequence[Sequence[int]], max_tokens: int | None = None, first_index: int = 0
    ) -> list[RenderedSequence]:
        """Token ids scored as given, cut from the start to the budget (the end, where the reward is read, kept).

        Raises:
            ThemisInputError: an id outside the model's vocabulary, naming its row (``first_index`` is the
                index of ``ids[0]`` in the caller's list).
        """
        vocab = len(self.renderer.tokenizer)
        for i, row in enumerate(ids, start=first_index):
            if any(not 0 <= token < vocab for token in row):
                raise ThemisInputError(f"input[{i}]: token ids must be in [0, {vocab}) for this model")
        budget = self._budget(max_tokens)
        return [_keep_end(list(row), budget, None) for row in ids]

    def _budget(self, max_tokens: int | None) -> int:
        return self.renderer.max_length if max_tokens is None else min(max_tokens, self.renderer.max_length)

    def score_pairs(
        self,
        pairs: Sequence[PreferencePair],
        criteria: str | Sequence[str] | None = ASPECT,
        progress: Callable[[int], None] | None = None,
    ) -> PairScores:
        """Score chosen and rejected of every pair in one engine call (length-sorted together).

        ``criteria="aspect"`` scores each pair under its own aspect's prompt; anything else applies to all.
        """
        systems = self._pair_systems(pairs, criteria)
        requests = [ScoreRequest(p.prompt, p.chosen, s) for p, s in zip(pairs, systems, strict=True)]
        requests += [ScoreRequest(p.prompt, p.rejected, s) for p, s in zip(pairs, systems, strict=True)]
        n = len(pairs)
        try:
            rendered = self.renderer.render_many(requests)
        except PromptTooLongError as exc:
            side = "chosen" if exc.index < n else "rejected"
            message = str(exc).split(": ", 1)[1]
            raise PromptTooLongError(f"pair {pairs[exc.index % n].id!r} ({side}): {message}", exc.index) from exc
        out = self._score_output(rendered, progress)
        prompt_cut = (out.prompt_truncated_tokens[:n] > 0) | (out.prompt_truncated_tokens[n:] > 0)
        sides = zip(rendered[:n], rendered[n:], strict=True)
        identical = np.array([c.input_ids == r.input_ids for c, r in sides], dtype=bool)
        return PairScores(
            out.rewards[:n], out.rewards[n:], out.truncated_tokens[:n], out.truncated_tokens[n:], prompt_cut, identical
        )

    def _pair_systems(self, pairs: Sequence[PreferencePair], criteria) -> list[str | None]:
        if criteria != ASPECT:
            return [self.system_prompt(criteria)] * len(pairs)
        require_aspects(pairs)
        cache: dict[str | None, str | None] = {}
        for pair in pairs:
            if pair.aspect not in cache:
                cache[pair.aspect] = self.system_prompt(pair.aspect)
        return [cache[p.aspect] for p in pairs]

    def choose_path(self, rendered: Sequence[RenderedSequence]) -> str:
        """The fastest exact path for these sequences (:func:`~themis_rm.scoring.engine_choice.choose_path`)."""
        return choose_path(self.engine_mode, self.engines, rendered)

    def work_counters(self) -> dict:
        """The engine's counters (sequences, batches, real and padded tokens, seconds) for ``run.json``."""
        return {**dataclasses.asdict(self.engine.stats), "engine_paths": dict(self.path_counts)}

    def score_variant(
        self, pairs: Sequence[PreferencePair], criteria: str | Sequence[str] | None, variant: str
    ) -> PairScores:
        """:meth:`score_pairs` for a perturbed copy of the pairs; a model's scores do not depend on ``variant``."""
        return self.score_pairs(pairs, criteria)

    # ------------------------------------------------------------------------------------------------ settings
    def resolved_settings(self) -> dict:
        """The dtype and device type the model loaded in (``auto`` resolved), for a bench checkpoint's fingerprint."""
        return {"dtype": str(self.loaded.dtype).removeprefix("torch."), "device": self.loaded.device.type}

    def settings(self, criteria: str | Sequence[str] | None = None) -> dict:
        """What produced these scores: recorded beside every output.

        ``engine`` is the requested mode (``auto`` by default); ``engine_paths`` counts the engine calls each path
        actually served so far, so call this after scoring.
        """
        info = {
            "model": self.loaded.model_id,
            "revision": self.loaded.revision or getattr(self.loaded.model.config, "_commit_hash", None),
            "dtype": str(self.loaded.dtype).removeprefix("torch."),
            "device": str(self.loaded.device),
            "attn_implementation": self.loaded.attn_implementation,
            "adapter": self.loaded.adapter,
            "adapter_spec": self.loaded.adapter_spec,
            "max_length": self.max_length,
            "prompt_overflow": self.renderer.prompt_overflow,
            "batch_tokens": self.engine.batch_tokens,
            "engine": self.engine_mode,
            "engine_paths": dict(self.path_counts),
            "chat_template": "tokenizer" if self.renderer.uses_chat_template else "fallback",
            **package_versions(),
        }
        if criteria == ASPECT:
            info["criteria"] = ASPECT
        elif criteria is not None:
            selection = self.selection(criteria)
            info["criteria"] = self.prompts.selection_label(selection) if selection else "none"
        if isinstance(self._prompts, PromptPack):
            info["prompt_pack"] = {"name": self._prompts.name, "sha256": self._prompts.sha256}
        return info


def require_aspects(rows: Sequence[PreferencePair | ResponseRow]) -> None:
    """Refuse rows without an aspect under ``criteria="aspect"``: they would be scored with no criterion at all.

    Raises:
        ThemisInputError: naming the first such row's id and its index in ``rows``.
    """
    for index, row in enumerate(rows):
        if row.aspect is None:
            kind = "pair" if isinstance(row, PreferencePair) else "row"
            raise ThemisInputError(
                f"{kind} {row.id!r} (index {index}) has no aspect; criteria 'aspect' needs every {kind}'s aspect; "
                "use criteria 'full' or 'none', or set the aspect"
            )


def capped_max_length(requested: int, tokenizer, model_config) -> int:
    """``requested``, capped by the tokenizer's and the model's own position limits (logged when it is)."""
    limits = [
        requested,
        getattr(tokenizer, "model_max_length", None) or _UNBOUNDED,
        getattr(model_config, "max_position_embeddings", None) or _UNBOUNDED,
    ]
    effective = min(limits)
    if effective < requested:
        logger.warning("max_length %d capped to %d by the model/tokenizer limits", requested, effective)
    return effective


def _with_bos(ids: list[int], bos: int | None) -> list[int]:
    """``ids`` starting with ``bos`` (when given): put in front unless already there."""
    return [bos, *ids] if bos is not None and ids[:1] != [bos] else ids


def _keep_end(ids: list[int], budget: int, bos: int | None) -> RenderedSequence:
    """``ids`` cut from the start to ``budget``; a leading ``bos`` (when given) is never doubled and never cut."""
    head = [bos] if bos is not None and ids[:1] == [bos] else []
    body = ids[len(head) :]
    if head and body[:1] == head:
        body = body[1:]  # the text carried its own BOS and the tokenizer added another
    overflow = max(0, len(head) + len(body) - budget)
    return RenderedSequence(head + body[overflow:], 0, 0, truncated_tokens=overflow)


def _strip_token(text: str, token: str | None) -> str:
    """``text`` without whole copies of ``token`` (padding) at either end."""
    if not token:
        return text
    while text.startswith(token):
        text = text[len(token) :]
    while text.endswith(token):
        text = text[: -len(token)]
    return text
