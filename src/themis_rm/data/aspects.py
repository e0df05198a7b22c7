"""Aspect labelling of commits from term lists: word-boundary aware, case-insensitive, multi-label.

The reference matched terms as bare substrings, so ``rce`` fired inside "source", ``dry`` inside "laundry",
``solid`` inside "consolidate" and "solidity", and ``index`` in "index.html". Our rule, in three parts:

1. A term starts at a word start (the character before it is not a letter or digit).
2. A *word* term (5 characters or fewer: ``rce``, ``cve``, ``hash``, ``index``, ``solid``) ends at a word end,
   after at most a regular inflection (-s, -es, -e, -d, -ed, -ing): ``cve`` -> "CVEs", ``hash`` -> "hashing",
   ``index`` -> "indexes", but ``sqli`` never matches "sqlite" nor ``solid`` "solidity". A *stem* (6 characters
   or more) may continue into a word, which keeps the authors' deliberate truncations working (``sanitiz`` ->
   "sanitize", ``fix concurre`` -> "fix concurrency", ``optimiz`` -> "optimization"). The line sits at 6 because
   every truncated term in the authors' lists is at least that long, while their 5-letter terms (``align``,
   ``index``, ``reuse``, ``solid``) are whole words whose longer forms mean something else.
3. A match directly followed by ``.`` and a letter or digit is part of a file name or dotted name
   ("Update index.html", "solid.js", "security.md"), not a mention of the term, and does not count.

Spaces inside a term match any run of whitespace. Term lists: the package ships its own
(``resources/terms/<Criterion>.txt``). ``terms_dir`` (``--terms-dir``) replaces them with a directory in either our
layout or the authors' (``functionality_term_list.list``, ``memory_eff_term_list.list``,
``readability_term_list.list``, ``runtime_eff_term_list.list``, ``sec_term_list.list``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from themis_rm.criteria import (
    CRITERIA,
    FUNCTIONAL_CORRECTNESS,
    MEMORY_EFFICIENCY,
    READABILITY_MAINTAINABILITY,
    RUNTIME_EFFICIENCY,
    SECURITY_HARDNESS,
)
from themis_rm.data.base import CountingStep, DocumentsPipeline
from themis_rm.data.config import AspectConfig
from themis_rm.errors import ThemisInputError

AUTHOR_FILES: dict[str, str] = {
    "functionality_term_list.list": FUNCTIONAL_CORRECTNESS,
    "memory_eff_term_list.list": MEMORY_EFFICIENCY,
    "readability_term_list.list": READABILITY_MAINTAINABILITY,
    "runtime_eff_term_list.list": RUNTIME_EFFICIENCY,
    "sec_term_list.list": SECURITY_HARDNESS,
}
WORD_TERM_CHARS = 5
"""Terms this long or shorter are whole words (plus an inflection); longer ones are stems."""
_NOT_FILE_NAME = r"(?!\.[a-z0-9])"
_WORD_TAIL = r"(?:e?s|e?d|e|ing)?(?![a-z0-9])" + _NOT_FILE_NAME
_STEM_TAIL = r"[a-z0-9]*(?![a-z0-9])" + _NOT_FILE_NAME


def term_pattern(terms: list[str]) -> re.Pattern[str]:
    """One regex matching any of ``terms`` under the word-boundary rule.

    The terms are merged into a prefix trie before compiling: Python's ``re`` tries alternatives one by one, and a
    flat alternation of 800 terms costs milliseconds per message; the trie costs microseconds.
    """
    trie: dict = {}
    for term in terms:
        node = trie
        for char in term:
            node = node.setdefault(char, {})
        node[""] = _WORD_TAIL if len(term) <= WORD_TERM_CHARS else _STEM_TAIL
    return re.compile(r"(?<![a-z0-9])" + _trie_regex(trie))


def _trie_regex(node: dict) -> str:
    """Alternation of the children (longer terms first), then the end-of-term tail if a term ends here."""
    branches = []
    for char in sorted(key for key in node if key):
        head = r"\s+" if char == " " else re.escape(char)
        branches.append(head + _trie_regex(node[char]))
    if "" in node:
        branches.append(node[""])
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


class AspectMatcher:
    """Labels text with every aspect whose list has a matching term."""

    def __init__(self, terms: Mapping[str, list[str]]) -> None:
        unknown = sorted(set(terms) - set(CRITERIA))
        if unknown:
            raise ThemisInputError(f"term lists for unknown aspects {unknown}; valid: {', '.join(CRITERIA)}")
        self.terms = {aspect: list(terms[aspect]) for aspect in CRITERIA if terms.get(aspect)}
        self._patterns = {aspect: term_pattern(words) for aspect, words in self.terms.items()}
        self._known = {aspect: set(words) for aspect, words in self.terms.items()}

    def match(self, text: str) -> dict[str, list[str]]:
        """Aspect -> matched terms (non-overlapping, in text order), aspects in canonical order."""
        lowered = text.lower()
        found = {}
        for aspect, pattern in self._patterns.items():
            hits = [self._term_of(aspect, m.group(0)) for m in pattern.finditer(lowered)]
            if hits:
                found[aspect] = list(dict.fromkeys(hits))
        return found

    def _term_of(self, aspect: str, matched: str) -> str:
        """The list term behind a match: the longest term the matched words start with (a match is a term plus
        an inflection or, for a stem, the rest of its word)."""
        text = " ".join(matched.split())
        known = self._known[aspect]
        return next((text[:n] for n in range(len(text), 0, -1) if text[:n] in known), text)


def load_terms(terms_dir: str | Path | None = None) -> dict[str, list[str]]:
    """Term lists by aspect from ``terms_dir`` (our layout or the authors'), or the package's own lists."""
    if terms_dir is None:
        root = resources.files("themis_rm.data.resources") / "terms"
        return {key: _parse_terms((root / f"{key}.txt").read_text("utf-8")) for key in CRITERIA}
    directory = Path(terms_dir)
    if not directory.is_dir():
        raise ThemisInputError(f"aspects.terms_dir {directory} is not a directory")
    terms: dict[str, list[str]] = {}
    for path in sorted(directory.iterdir()):
        aspect = AUTHOR_FILES.get(path.name) or (path.stem if path.suffix == ".txt" and path.stem in CRITERIA else None)
        if aspect is not None:
            terms.setdefault(aspect, []).extend(_parse_terms(path.read_text(encoding="utf-8")))
    if not terms:
        expected = ", ".join([*AUTHOR_FILES, "<Criterion>.txt"])
        raise ThemisInputError(f"aspects.terms_dir {directory}: no term lists found (expected {expected})")
    return terms


def _parse_terms(text: str) -> list[str]:
    words = (" ".join(line.lower().split()) for line in text.splitlines() if not line.lstrip().startswith("#"))
    return list(dict.fromkeys(word for word in words if word))


class AspectLabeler(CountingStep):
    """Adds ``aspects`` (canonical order) and ``aspect_terms`` to each record; counts ``aspect_<key>`` per label."""

    type = "🏷 - LABEL"
    name = "aspects"

    def __init__(self, config: AspectConfig | None = None) -> None:
        super().__init__()
        self.config = config or AspectConfig()
        self.matcher = AspectMatcher(load_terms(self.config.terms_dir))

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            message = doc.metadata.get("message") or ""
            text = message.split("\n", 1)[0] if self.config.match_on == "subject" else message
            found = self.matcher.match(text)
            doc.metadata["aspects"] = list(found)
            doc.metadata["aspect_terms"] = found
            for aspect in found:
                self.stat_update(f"aspect_{aspect}")
            if not found and self.config.require:
                self.count("no_aspect")
                continue
            self.count("forwarded")
            yield doc
