"""Training pairs: the schema, its validation, and the system prompt each pair is trained and evaluated under.

One valid training row (``system`` optional; ``prompt`` is accepted for ``input``, as in CodeRewardBench)::

    {"input": "Sum a list in Python.", "chosen": "def total(xs): return sum(xs)",
     "rejected": "def total(xs):\\n    t = 0\\n    for x in xs: t = t + x\\n    return t",
     "aspect": "Runtime_Efficiency", "language": "Python"}

``system`` has three states:

* absent or null: a criteria prompt from :class:`~themis_rm.criteria.PromptSampler` (15% none / 60% its own
  aspect / 25% all five shuffled), drawn from ``(seed, epoch, index)`` so every epoch re-samples and a resumed run
  draws the same prompts;
* ``""`` (present and empty or blank): no system prompt at all, every epoch — a pair the data pipeline wants
  trained without criteria is not re-sampled into one;
* any other text: exactly that system prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from themis_rm.criteria import GENERAL_ASPECTS, PromptPack, PromptSampler, SamplingProbs
from themis_rm.errors import ThemisInputError
from themis_rm.pairs import LoadedRows, Prompt, RowValidator, load_rows

logger = logging.getLogger(__name__)

NO_SYSTEM = ""  # TrainingPair.system of a row whose ``system`` is an explicit empty string: no system prompt


@dataclass(frozen=True, slots=True)
class TrainingPair:
    """One preference: ``prompt`` (text or messages), ``chosen``/``rejected`` responses, optional labels."""

    id: str
    prompt: Prompt
    chosen: str
    rejected: str
    system: str | None = None  # None: sample a criteria prompt; NO_SYSTEM (""): none; else that prompt
    aspect: str | None = None
    language: str | None = None

    @property
    def length_chars(self) -> int:
        """Characters of prompt and longer response, without the system prompt (sampled per epoch)."""
        prompt = self.prompt if isinstance(self.prompt, str) else "".join(m["content"] for m in self.prompt)
        return len(prompt) + max(len(self.chosen), len(self.rejected))


def load_training_pairs(
    source: str | Path,
    *,
    pack: Callable[[], PromptPack],
    split: str | None = None,
    skip_invalid: bool = False,
) -> LoadedRows:
    """Read and validate training pairs.

    A row without ``system`` is trained under sampled criteria prompts, so its ``aspect`` (when present) must be
    a criterion of the pack or a general aspect (``Helpfulness``/``Harmlessness``); it is canonicalised
    (``runtime`` -> ``Runtime_Efficiency``). With ``system`` the aspect is only a label for eval reports.

    Args:
        pack: returns the prompt pack; called only when a row needs one (so files whose rows all carry
            ``system`` train without any pack).
    """

    def parse(v: RowValidator) -> TrainingPair:
        chosen, chosen_context = v.response("chosen")
        rejected, rejected_context = v.response("rejected")
        if chosen_context is not None and rejected_context is not None and chosen_context != rejected_context:
            raise v.fail("rejected", "conversation context differs from the chosen one")
        prompt_field = "input" if v.record.get("input") is not None else "prompt"
        system = _system(v)
        aspect = v.text("aspect", required=False)
        if aspect is not None and aspect not in GENERAL_ASPECTS and system is None:
            try:
                aspect = pack().resolve_one(aspect)
            except ThemisInputError as exc:
                raise v.fail("aspect", f"is not a known criterion or general aspect: {exc}") from exc
        return TrainingPair(
            id=v.row_id("id"),
            prompt=v.prompt(prompt_field, fallback=chosen_context or rejected_context or None),
            chosen=chosen,
            rejected=rejected,
            system=system,
            aspect=aspect,
            language=v.text("language", required=False),
        )

    return load_rows(source, parse, skip_invalid, split=split)


def _system(v: RowValidator) -> str | None:
    """``system`` as the trainer needs it: None (absent/null: sample), NO_SYSTEM (empty or blank), or the text.

    ``RowValidator.text`` maps a blank optional field to None, which would turn "train without a system prompt"
    into "sample one", so the empty string is recognised here first.
    """
    value = v.record.get("system")
    if isinstance(value, str) and not value.strip():
        return NO_SYSTEM
    return v.text("system", required=False)


class SystemPrompts:
    """The system prompt of every pair: its own, else a sampled training prompt, else the aspect's eval prompt."""

    def __init__(self, pack: PromptPack | None, seed: int, mix: tuple[float, ...] | None = None) -> None:
        self.pack = pack
        probs = SamplingProbs(*mix) if mix is not None else None
        self.sampler = PromptSampler(pack, probs, seed=seed) if pack is not None else None

    def training(self, pair: TrainingPair, index: int, epoch: int) -> str | None:
        """Training-time prompt of pair ``index`` in ``epoch`` (deterministic in seed, epoch, index); None: none."""
        if pair.system is not None:
            return pair.system or None  # NO_SYSTEM renders no system turn (an empty one would add template tokens)
        if self.sampler is None:
            raise ThemisInputError(f"pair {pair.id!r} has no 'system' and no prompt pack was loaded (--prompt-pack)")
        return self.sampler.sample(pair.aspect, index, epoch)

    def training_lengths(self, pairs: Sequence[TrainingPair], epoch: int) -> list[int]:
        """Characters of each pair *with* the system prompt it gets in ``epoch``: the key of length grouping.

        The sampled prompt dominates short pairs (none, one criterion or all five differ by ~1000 tokens with the
        official pack), so grouping must see it; characters stand in for tokens (no tokenisation needed).
        """
        return [p.length_chars + len(self.training(p, i, epoch) or "") for i, p in enumerate(pairs)]

    def evaluation_lengths(self, pairs: Sequence[TrainingPair]) -> list[int]:
        """The same for the evaluation prompts."""
        return [p.length_chars + len(self.evaluation(p) or "") for p in pairs]

    def evaluation(self, pair: TrainingPair) -> str | None:
        """Eval-time prompt: the pair's own (None for NO_SYSTEM), else its criterion's fixed eval string (CRB style)."""
        if pair.system is not None:
            return pair.system or None
        if pair.aspect is None or pair.aspect in GENERAL_ASPECTS or self.pack is None:
            return None
        return self.pack.eval_prompt(self.pack.resolve(pair.aspect))
