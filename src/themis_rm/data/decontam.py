"""13-gram decontamination against benchmark files (CodeRewardBench-style pairs).

Text is lower-cased and split into words (``\\w+``); a record is contaminated when any of its texts shares one
word 13-gram with any indexed benchmark text. The benchmark side indexes ``prompt``, ``chosen`` and ``rejected`` by
default (a leaked solution is as harmful as a leaked prompt); the record side checks the commit message, the
instruction (when an LLM stage wrote one), both file versions and any introduced bug. The authors did not release
their decontamination; this is our rule.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator

from themis_rm.data.base import BaseFilter
from themis_rm.data.config import DecontamConfig
from themis_rm.readers import read_records

logger = logging.getLogger(__name__)
_WORD = re.compile(r"\w+")
RECORD_FIELDS = ("message", "instruction", "old_contents", "buggy_code")


def ngrams(text: str, n: int) -> Iterator[tuple[str, ...]]:
    """Word n-grams of ``text`` (lower-cased); a text shorter than ``n`` words has none."""
    words = _WORD.findall(text.lower())
    for i in range(len(words) - n + 1):
        yield tuple(words[i : i + n])


class NgramIndex:
    """Hashes of every benchmark n-gram; membership checks are set look-ups."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._hashes: set[int] = set()

    def add(self, text: str) -> None:
        self._hashes.update(hash(gram) for gram in ngrams(text, self.n))

    def overlaps(self, text: str) -> int:
        """How many of ``text``'s n-grams occur in the index."""
        return sum(hash(gram) in self._hashes for gram in ngrams(text, self.n))

    def shares_ngram(self, text: str) -> bool:
        """Whether any n-gram of ``text`` occurs in the index (stops at the first)."""
        return any(hash(gram) in self._hashes for gram in ngrams(text, self.n))

    def __len__(self) -> int:
        return len(self._hashes)


def build_index(config: DecontamConfig) -> NgramIndex:
    """Index the configured columns of every benchmark file."""
    index = NgramIndex(config.ngram)
    for source in config.benchmarks:
        for _, record in read_records(source):
            for name in config.fields:
                for text in _texts(record.get(name)):
                    index.add(text)
    return index


def _texts(value) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str))


def record_texts(doc) -> Iterator[str]:
    """The texts of a record that could carry benchmark content into training."""
    yield doc.text
    for name in RECORD_FIELDS:
        value = doc.metadata.get(name)
        if isinstance(value, str):
            yield value


class DecontaminationFilter(BaseFilter):
    """Drops records sharing an n-gram with a benchmark (``contaminated``); the index is built once per task."""

    name = "decontaminate"

    def __init__(self, config: DecontamConfig) -> None:
        super().__init__()
        self.config = config
        self._index: NgramIndex | None = None

    def filter(self, doc) -> bool | tuple[bool, str]:
        if self._index is None:
            self._index = build_index(self.config)
            logger.info("decontamination index: %d benchmark %d-grams", len(self._index), self.config.ngram)
        if any(self._index.shares_ngram(text) for text in record_texts(doc)):
            return False, "contaminated"
        return True
