"""Assembly: records -> training pairs with criteria system prompts, a chat-template token budget and a split.

One output row (the schema ``themis train`` reads; ``repo``/``commit``/``path`` say where it came from, ``lines``
which lines of the new file it shows when the budget cut it to a window, else null)::

    {"id": "3f1c0a9b2e7d4c11:Runtime_Efficiency", "system": "You are ...", "input": "Speed up ...",
     "chosen": "<new file>", "rejected": "<old file>", "aspect": "Runtime_Efficiency", "language": "Python",
     "repo": "acme/kv", "commit": "9fceb02...", "path": "src/kv.c", "lines": null}

A record yields one pair per aspect it still carries, plus a Functional_Correctness pair against its introduced bug
when the bug stage wrote one. System prompts come from :class:`themis_rm.criteria.PromptSampler` (15% none / 60%
the pair's criterion / 25% all five shuffled) keyed by the row id, so they do not depend on order or workers. The
split hashes the repository name: a repository is entirely in ``train`` or entirely in ``validation``.

``system`` is always written, because the training schema gives absence a meaning: a row without ``system`` (or
with ``null``) asks the trainer to sample a criteria prompt itself, while ``"system": ""`` means "no system prompt".
The 15% drawn without a prompt are therefore written as ``""``; dropping the key would let the trainer give them one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from themis_rm.criteria import FUNCTIONAL_CORRECTNESS, PromptSampler
from themis_rm.data.base import CountingStep, Document, DocumentsPipeline
from themis_rm.data.config import OVER_BUDGET_POLICIES, AssembleConfig
from themis_rm.data.records import pair_input, stable_int
from themis_rm.errors import ThemisInputError
from themis_rm.pairs import ScoreRequest

SPLITS = ("train", "validation")
PROVENANCE_FIELDS = ("repo", "commit", "path", "lines")  # where a pair came from; ``lines`` is set by ChatBudget
OUTPUT_FIELDS = ("id", "system", "input", "chosen", "rejected", "aspect", "language", *PROVENANCE_FIELDS)
PROMPT_SOURCE_FIELDS = ("message", "instruction")  # carried (not written) so ChatBudget can re-word a cut pair
NO_SYSTEM_PROMPT = ""
"""``system`` of a pair drawn without a prompt: present and empty (absent or null means "trainer, sample one")."""


def split_of(repo: str, fraction: float, seed: int = 0) -> str:
    """``validation`` for a ``fraction`` of repositories chosen by hash, else ``train``."""
    return "validation" if stable_int(f"split:{seed}:{repo.lower()}") / 2**64 < fraction else "train"


class PairBuilder(CountingStep):
    """Expands each record into its pairs; a record with no aspect left is dropped (``no_aspect``)."""

    type = "🧩 - ASSEMBLE"
    name = "pairs"

    def __init__(self, config: AssembleConfig) -> None:
        """Resolves the prompt pack now, so a missing official pack fails when the pipeline is built, not after mining.

        Raises:
            PromptPackError: the pack cannot be found (offline and not cached); the message says how to get it.
        """
        from themis_rm.packs import load_prompt_pack

        super().__init__()
        self.config = config
        self._sampler = PromptSampler(load_prompt_pack(config.prompt_pack), seed=config.seed)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            pairs = list(self.pairs(doc))
            self.count("forwarded" if pairs else "no_aspect")
            for pair in pairs:
                self.stat_update("pairs", f"pairs_{pair.metadata['aspect']}")
                yield pair

    def pairs(self, doc):
        meta = doc.metadata
        prompt = pair_input(meta)
        rejected = [(aspect, meta["old_contents"], aspect) for aspect in meta.get("aspects", [])]
        if self.config.bug_pairs and meta.get("buggy_code"):
            rejected.append((FUNCTIONAL_CORRECTNESS, meta["buggy_code"], "bug"))
        split = split_of(meta["repo"], self.config.validation_fraction, self.config.seed)
        for aspect, worse, tag in rejected:
            pair_id = f"{doc.id}:{tag}"
            system = self._sampler.sample(aspect, stable_int(pair_id) % 2**62)
            row = {"system": NO_SYSTEM_PROMPT if system is None else system}
            row |= {"input": prompt, "chosen": doc.text, "rejected": worse, "aspect": aspect}
            row |= {"language": meta.get("language"), "split": split}
            row |= {name: meta.get(name) for name in (*PROVENANCE_FIELDS, *PROMPT_SOURCE_FIELDS)}
            yield Document(text=doc.text, id=pair_id, metadata=row)


@dataclass(frozen=True)
class Excerpt:
    """The same line window of both file versions: the changed lines plus ``context`` unchanged lines each side.

    ``first``/``last`` are 1-based line numbers of the window in the chosen (new) version.
    """

    chosen: str
    rejected: str
    first: int
    last: int


def change_window(chosen: str, rejected: str, context: int) -> Excerpt:
    """Both versions cut to the changed lines (between their common first and last lines) and ``context`` more."""
    new, old = chosen.splitlines(keepends=True), rejected.splitlines(keepends=True)
    head = 0
    while head < min(len(new), len(old)) and new[head] == old[head]:
        head += 1
    tail = 0
    while tail < min(len(new), len(old)) - head and new[-1 - tail] == old[-1 - tail]:
        tail += 1
    start = max(head - context, 0)
    new_end, old_end = min(len(new) - tail + context, len(new)), min(len(old) - tail + context, len(old))
    return Excerpt("".join(new[start:new_end]), "".join(old[start:old_end]), start + 1, new_end)


class ChatBudget(CountingStep):
    """Keeps every pair's rendered chosen and rejected within ``max_tokens`` under the target chat template.

    Whole-file pairs mostly exceed a trainer's budget, and the trainer cuts a response's end, which can remove the
    only difference (5 of 21 mined pairs at 4096 tokens). A pair over the budget is therefore either cut here to
    the same line window of both versions around the change — as much unchanged context as fits, the user turn
    saying which lines it shows (``windowed``) — or, with ``over_budget: drop``, dropped (``dropped_too_long``).
    A change too large for the budget with no context at all is dropped (``dropped_change_too_long``), and a pair
    whose sides are equal text (``dropped_identical``).
    """

    type = "📏 - BUDGET"
    name = "chat_budget"

    def __init__(self, tokenizer: str, max_tokens: int, over_budget: str = "window") -> None:
        from themis_rm.data.filters import load_tokenizer

        super().__init__()
        if over_budget not in OVER_BUDGET_POLICIES:
            raise ThemisInputError(f"assemble.over_budget must be one of {', '.join(OVER_BUDGET_POLICIES)}")
        try:  # fail when the pipeline is built, not in a worker after mining
            load_tokenizer(tokenizer)
        except ThemisInputError as exc:
            raise ThemisInputError(f"assemble.tokenizer: {exc}, or null to turn the token budget off") from exc
        self.tokenizer, self.max_tokens, self.over_budget = tokenizer, max_tokens, over_budget
        self._renderer = None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            with self.track_time():
                outcome = self._fit(doc)
            kept = outcome in ("forwarded", "windowed")
            self.count("forwarded" if kept else outcome)
            if outcome == "windowed":
                self.stat_update("windowed")
            if kept:
                yield doc

    def _fit(self, doc) -> str:
        meta = doc.metadata
        if meta["chosen"] == meta["rejected"]:
            return "identical"
        if self._longest(meta["input"], meta["chosen"], meta["rejected"], meta) <= self.max_tokens:
            return "forwarded"
        if self.over_budget == "drop":
            return "too_long"
        excerpt = self._widest_window(meta)
        if excerpt is None:
            return "change_too_long"
        meta["input"] = pair_input(meta, (excerpt.first, excerpt.last))
        meta["chosen"], meta["rejected"] = excerpt.chosen, excerpt.rejected
        meta["lines"] = [excerpt.first, excerpt.last]  # of the chosen version; null: the whole file
        doc.text = excerpt.chosen
        return "windowed"

    def _widest_window(self, meta: dict) -> Excerpt | None:
        """The window with the most context that fits (binary search: the length grows with the context)."""
        lines = max(meta["chosen"].count("\n"), meta["rejected"].count("\n")) + 1
        best, low, high = None, 0, lines
        while low <= high:
            context = (low + high) // 2
            excerpt = change_window(meta["chosen"], meta["rejected"], context)
            prompt = pair_input(meta, (excerpt.first, excerpt.last))
            if self._longest(prompt, excerpt.chosen, excerpt.rejected, meta) <= self.max_tokens:
                best, low = excerpt, context + 1
            else:
                high = context - 1
        return best

    def _longest(self, prompt: str, chosen: str, rejected: str, meta: dict) -> int:
        if self._renderer is None:
            from themis_rm.data.filters import load_tokenizer
            from themis_rm.render import ChatRenderer

            self._renderer = ChatRenderer(load_tokenizer(self.tokenizer))
        system = meta["system"] or None  # "" is no system turn at all, as the trainer renders it
        requests = [ScoreRequest(prompt, side, system) for side in (chosen, rejected)]
        longest = max(len(seq.input_ids) for seq in self._renderer.render_many(requests))
        self.stat_update("chat_tokens", value=longest)
        return longest


def training_row(_writer, document) -> dict[str, Any]:
    """Adapter for the output ``JsonlWriter``: the training schema, ``system`` always present (``""``: none)."""
    meta = document.metadata
    return {"id": document.id, **{name: meta.get(name) for name in OUTPUT_FIELDS[1:]}}


def pair_writer(folder: str):
    """Writes ``<folder>/train/<rank>.jsonl`` and ``<folder>/validation/<rank>.jsonl``."""
    from datatrove.pipeline.writers import JsonlWriter

    return JsonlWriter(folder, output_filename="${split}/${rank}.jsonl", compression=None, adapter=training_row)
