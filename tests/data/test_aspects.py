"""Aspect labelling: word-boundary rules, multi-label, our lists and the authors' layout via terms_dir."""

from __future__ import annotations

import pytest

pytest.importorskip("datatrove")

from themis_rm.criteria import CRITERIA
from themis_rm.data.aspects import AspectConfig, AspectLabeler, AspectMatcher, load_terms
from themis_rm.data.base import Document
from themis_rm.errors import ThemisInputError

FC, RE, ME, SH, RM = (
    "Functional_Correctness",
    "Runtime_Efficiency",
    "Memory_Efficiency",
    "Security_Hardness",
    "Readability_Maintainability",
)


# A few terms of each of the authors' lists (shared/reference/commit_mining_terms), in their file layout: the
# short terms, stems and multi-word terms the matching rules are about.
AUTHOR_TERMS = {
    "functionality_term_list.list": ["align", "fix concurre", "fix crash", "off by one"],
    "runtime_eff_term_list.list": ["caching", "hash", "index", "lru", "optimiz", "speed up"],
    "memory_eff_term_list.list": ["fix memory", "high memory", "memory footprint", "memory leak"],
    "sec_term_list.list": ["access control", "auth bypass", "cve", "rce", "sanitiz", "sqli", "unauthori", "xss"],
    "readability_term_list.list": ["dry", "refactor", "reuse", "solid", "clean up"],
}


@pytest.fixture(scope="module")
def authors_terms_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("commit_mining_terms")
    for name, terms in AUTHOR_TERMS.items():
        (directory / name).write_text("\n".join(terms) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def authors(authors_terms_dir) -> AspectMatcher:
    return AspectMatcher(load_terms(authors_terms_dir))


def test_authors_layout_maps_each_file_to_its_criterion(authors):
    assert {k: len(v) for k, v in authors.terms.items()} == {FC: 4, RE: 6, ME: 4, SH: 8, RM: 5}


@pytest.mark.real_data
def test_authors_layout_loads_all_five_lists(shared_dir):
    authors = AspectMatcher(load_terms(shared_dir / "reference" / "commit_mining_terms"))
    assert {k: len(v) for k, v in authors.terms.items()} == {FC: 135, RE: 226, ME: 24, SH: 271, RM: 166}


@pytest.mark.parametrize(
    "message",
    [
        "Update source files to force a rebuild",  # rce in source and force
        "Use sqlite for the local store",  # sqli in sqlite
        "Fix the laundry list of imports",  # dry in laundry
        "Consolidate handlers",  # solid in consolidate
        "precvent things",  # cve inside a word
        "Update index.html",  # index: a file name, not an index
        "Add solidity contract",  # solid: a 5-letter word, not a stem of solidity
        "Tweak src/hash.go and lru.py",  # hash and lru as file names
        "Fix alignment of the header",  # align: a word; alignment is layout, not correctness
    ],
)
def test_short_terms_do_not_fire_inside_words(authors, message):
    assert authors.match(message) == {}


@pytest.mark.parametrize(
    ("message", "aspect", "term"),
    [
        ("Fix RCE in upload handler", SH, "rce"),
        ("Patch two CVEs", SH, "cve"),
        ("rce: validate path", SH, "rce"),
        ("Refactoring the parser", RM, "refactor"),
        ("fix   concurrency issue in pool", FC, "fix concurre"),  # the authors' stem, any whitespace
        ("Hashing is now faster", RE, "hash"),
        ("Keep code DRY", RM, "dry"),
        ("Add indexes to the users table", RE, "index"),
        ("Rebuild the index.", RE, "index"),  # a full stop is not a file name
        ("Apply SOLID principles to the billing module", RM, "solid"),
        ("Reused helpers across views", RM, "reuse"),
        ("Sanitize filenames before upload", SH, "sanitiz"),  # the authors' stem
        ("Fix unauthorized access to admin", SH, "unauthori"),
    ],
)
def test_terms_match_at_word_starts_with_stems_and_inflections(authors, message, aspect, term):
    assert term in authors.match(message).get(aspect, [])


@pytest.mark.parametrize(
    ("message", "terms"),
    [
        ("Optimization of the parser", ["optimiz"]),  # a stem continues into its word
        ("optimized loops", ["optimiz"]),
        ("Reoptimize", []),  # but starts at a word start
        ("See optimizer.py", []),  # and a file name does not count
        ("Use rce", ["rce"]),
        ("RCEs patched", ["rce"]),
        ("source and force", []),
    ],
)
def test_stems_continue_into_words_and_short_terms_do_not(message, terms):
    assert AspectMatcher({RE: ["optimiz", "rce"]}).match(message).get(RE, []) == terms


def test_multi_label_in_canonical_order(authors):
    found = authors.match("Sanitize input to prevent XSS and speed up rendering with caching")
    assert list(found) == [RE, SH]
    assert set(found[SH]) >= {"xss"} and "caching" in found[RE]


def test_our_default_lists_cover_every_criterion_with_the_same_rules():
    matcher = AspectMatcher(load_terms())
    assert set(matcher.terms) == set(CRITERIA)
    assert matcher.match("Fix crash on empty input")[FC]
    assert matcher.match("Avoid quadratic loop, 3x faster")[RE]
    assert matcher.match("Plug memory leak in cache")[ME]
    assert matcher.match("Escape HTML to prevent XSS")[SH]
    assert matcher.match("Refactor: extract method for parsing")[RM]
    assert matcher.match("Update source to force rebuild") == {}


def test_terms_dir_in_our_layout_and_errors(tmp_path):
    (tmp_path / "Security_Hardness.txt").write_text("# comment\nTLS\n")
    assert load_terms(tmp_path) == {SH: ["tls"]}
    with pytest.raises(ThemisInputError, match="is not a directory"):
        load_terms(tmp_path / "Security_Hardness.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ThemisInputError, match="no term lists found"):
        load_terms(empty)


def test_labeler_sets_labels_counts_them_and_drops_unlabelled(authors_terms_dir):
    step = AspectLabeler(AspectConfig(terms_dir=str(authors_terms_dir)))
    docs = [
        Document("x", "1", metadata={"message": "Fix XSS in template"}),
        Document("x", "2", metadata={"message": "Add a new screen"}),
        Document("x", "3", metadata={"message": "Refactor\n\nbody mentions a memory leak"}),
    ]
    kept = list(step.run(iter(docs)))
    assert [(d.id, d.metadata["aspects"]) for d in kept] == [("1", [SH]), ("3", [ME, RM])]
    assert step.stats["dropped_no_aspect"].total == 1 and step.stats[f"aspect_{SH}"].total == 1
    subject_only = AspectLabeler(AspectConfig(match_on="subject"))
    kept = list(subject_only.run(iter([Document("x", "3", metadata={"message": "Refactor\n\nmemory leak"})])))
    assert kept[0].metadata["aspects"] == [RM]
