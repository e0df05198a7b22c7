"""Assembly: records -> training pairs with criteria system prompts, a chat-template length limit and a split.

One output row (the schema ``themis train`` reads)::

    {"id": "3f1c0a9b2e7d4c11:Runtime_Efficiency", "system": "You are ...", "input": "Speed up ...",
     "chosen": "<new file>", "rejected": "<old file>", "aspect": "Runtime_Efficiency", "language": "Python"}

A record yields one pair per aspect it still carries, plus a Functional_Correctness pair against its introduced bug
when the bug stage wrote one. System prompts come from :class:`themis_rm.criteria.PromptSampler` (15% none / 60%
the pair's criterion / 25% all five shuffled) keyed by the row id, so they do not depend on order or workers. The
split hashes the repository name: a repository is entirely in ``train`` or entirely in ``validation``.

``system`` is always written, because the training schema gives absence a meaning: a row without ``system`` (or
with ``null``) asks the trainer to sample a criteria prompt itself, while ``"system": ""`` means "no system prompt".
The 15% drawn without a prompt are therefore written as ``""``; dropping the key would let the trainer give them one.
"""

from __future__ import annotations

from typing import Any

from themis_rm.criteria import FUNCTIONAL_CORRECTNESS, PromptSampler
from themis_rm.data.base import BaseFilter, CountingStep, Document, DocumentsPipeline
from themis_rm.data.config import AssembleConfig
from themis_rm.data.records import pair_input, stable_int
from themis_rm.pairs import ScoreRequest

SPLITS = ("train", "validation")
OUTPUT_FIELDS = ("id", "system", "input", "chosen", "rejected", "aspect", "language")
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
            row |= {"language": meta.get("language"), "repo": meta["repo"], "split": split}
            yield Document(text=doc.text, id=pair_id, metadata=row)


class ChatLengthFilter(BaseFilter):
    """Drops pairs whose chosen or rejected conversation exceeds ``max_tokens`` under the chat template."""

    name = "chat_length"

    def __init__(self, tokenizer: str, max_tokens: int) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._renderer = None

    def filter(self, doc) -> bool | tuple[bool, str]:
        if self._renderer is None:
            from themis_rm.data.filters import load_tokenizer
            from themis_rm.render import ChatRenderer

            self._renderer = ChatRenderer(load_tokenizer(self.tokenizer))
        meta = doc.metadata
        system = meta["system"] or None  # "" is no system turn at all, as the trainer renders it
        requests = [ScoreRequest(meta["input"], meta[side], system) for side in ("chosen", "rejected")]
        lengths = [len(seq.input_ids) for seq in self._renderer.render_many(requests)]
        self.stat_update("chat_tokens", value=max(lengths))
        return max(lengths) <= self.max_tokens or (False, "too_long")


def training_row(_writer, document) -> dict[str, Any]:
    """Adapter for the output ``JsonlWriter``: the training schema, ``system`` always present (``""``: none)."""
    meta = document.metadata
    return {"id": document.id, **{name: meta.get(name) for name in OUTPUT_FIELDS[1:]}}


def pair_writer(folder: str):
    """Writes ``<folder>/train/<rank>.jsonl`` and ``<folder>/validation/<rank>.jsonl``."""
    from datatrove.pipeline.writers import JsonlWriter

    return JsonlWriter(folder, output_filename="${split}/${rank}.jsonl", compression=None, adapter=training_row)
