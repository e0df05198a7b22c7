"""Criteria selection and prompt rendering: mechanics on the bundled open pack, wording against the published strings.

Selection, sampling, aliases and user criteria run on the ``open`` pack, whose expected strings are rebuilt here
from its TOML. The byte-exact checks (``real_data``) read ``shared/reference/themis_system_prompts.json`` at
runtime, never copied here; every expected training string is rebuilt from its ``train_components`` by the
formula in its ``_note``, independently of :class:`PromptPack`.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from collections import Counter
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest

from themis_rm.criteria import (
    CRITERIA,
    FULL,
    FULL_EVAL_ORDER,
    FUNCTIONAL_CORRECTNESS,
    MEMORY_EFFICIENCY,
    READABILITY_MAINTAINABILITY,
    RUNTIME_EFFICIENCY,
    SECURITY_HARDNESS,
    PromptPack,
    PromptSampler,
    SamplingProbs,
    load_pack_json,
    pack_from_layout,
)
from themis_rm.errors import CriteriaError, PromptPackError
from themis_rm.packs import load_prompt_pack

# Lengths of the published evaluation prompts (REFERENCE-NOTES 1.8); facts about the strings, not the strings.
EVAL_LENGTHS = {
    FULL: 3398,
    FUNCTIONAL_CORRECTNESS: 1634,
    MEMORY_EFFICIENCY: 1639,
    READABILITY_MAINTAINABILITY: 1752,
    RUNTIME_EFFICIENCY: 1739,
    SECURITY_HARDNESS: 1621,
}
# Recorded digest of the official pack: run settings name the prompts by it, so it must not drift.
OFFICIAL_PACK_SHA256 = "a43d8e0cef217c10e25b546300ab9515444e369468e14011665890f65a66c700"


@pytest.fixture(scope="module")
def layout(official_prompts_path) -> dict:
    return json.loads(official_prompts_path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def official_components(layout) -> dict[str, str]:
    return layout["train_components"]


def _open_components() -> dict[str, str]:
    """The open pack's texts rebuilt from its TOML with :mod:`tomllib`, independently of :class:`PromptPack`."""
    toml = (resources.files("themis_rm.resources") / "open_criteria.toml").read_text(encoding="utf-8")
    data = tomllib.loads(toml)
    criteria = {table["key"]: f"**{table['title']}**: {table['text'].strip()}" for table in data["criteria"]}
    return {"base": data["base"].strip(), **criteria}


# Pack mechanics run on the bundled open pack; ``indirect`` parametrization adds the official pack (real_data).
BOTH_PACKS = pytest.mark.parametrize(
    "pack_case", ["open", pytest.param("official", marks=pytest.mark.real_data)], indirect=True
)


@pytest.fixture(scope="module")
def pack_case(request) -> tuple[PromptPack, dict[str, str]]:
    """(pack, its components as the layout's ``train_components``): the open pack unless parametrized."""
    if getattr(request, "param", "open") == "open":
        return load_prompt_pack("open"), _open_components()
    return request.getfixturevalue("official_pack"), request.getfixturevalue("official_components")


@pytest.fixture(scope="module")
def pack(pack_case) -> PromptPack:
    return pack_case[0]


@pytest.fixture(scope="module")
def components(pack_case) -> dict[str, str]:
    return pack_case[1]


def _full_training_string(components: dict[str, str], order: tuple[str, ...]) -> str:
    """``base + '\\n\\n' + '\\n\\n'.join('{i+3}. ' + c for shuffled criteria) + '\\n\\n'`` (the ``_note``)."""
    numbered = "\n\n".join(f"{i + 3}. {components[key]}" for i, key in enumerate(order))
    return components["base"] + "\n\n" + numbered + "\n\n"


def _single_training_string(components: dict[str, str], key: str) -> str:
    """``base + '\\n\\n3. ' + criterion + '\\n\\n'`` (the ``_note``)."""
    return components["base"] + "\n\n3. " + components[key] + "\n\n"


def _all_full_variants(components: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """All 5! shuffled all-criteria training strings, each mapped to its criteria order."""
    return {_full_training_string(components, order): order for order in itertools.permutations(CRITERIA)}


@pytest.fixture(scope="module")
def full_variants(components) -> dict[str, tuple[str, ...]]:
    return _all_full_variants(components)


@pytest.fixture(scope="module")
def official_full_variants(official_components) -> dict[str, tuple[str, ...]]:
    return _all_full_variants(official_components)


# ------------------------------------------------------------------------------------ evaluation prompts
@pytest.mark.parametrize("key", [FULL, *CRITERIA])
@pytest.mark.real_data
def test_eval_prompt_equals_published_string_byte_for_byte(official_pack, layout, key):
    rendered = official_pack.eval_prompt(official_pack.resolve(key))

    assert rendered == layout["eval_prompts"][key]
    assert rendered.encode("utf-8") == layout["eval_prompts"][key].encode("utf-8")
    assert len(rendered) == EVAL_LENGTHS[key]


@BOTH_PACKS
@pytest.mark.parametrize("key", [FULL, *CRITERIA])
def test_eval_prompt_keeps_trailing_space_before_blank_line(pack, components, key):
    rendered = pack.eval_prompt(pack.resolve(key))
    # The published preamble has exactly one line ending in a space ("...set of criteria. " + blank line).
    space_at = components["base"].index(" \n\n")

    assert components["base"].count(" \n") == 1
    assert rendered.count(" \n") == 1
    assert rendered[: space_at + 3] == components["base"][: space_at + 3]


def test_full_eval_prompt_ends_with_single_newline(pack):
    rendered = pack.eval_prompt(pack.resolve("full"))

    assert rendered.endswith(".\n")
    assert not rendered.endswith("\n\n")


@pytest.mark.parametrize("key", CRITERIA)
def test_single_criterion_eval_prompt_has_no_trailing_newline(pack, components, key):
    rendered = pack.eval_prompt(pack.resolve(key))

    assert rendered == components["base"] + "\n\n3. " + components[key]
    assert not rendered.endswith("\n")


def test_no_criteria_has_no_eval_prompt(pack):
    assert pack.eval_prompt(pack.resolve("none")) is None
    assert pack.eval_prompt(()) is None


# -------------------------------------------------------------------------------------- training prompts
@BOTH_PACKS
def test_training_prompt_matches_note_formula_for_all_120_orders(pack, components):
    orders = list(itertools.permutations(CRITERIA))
    assert len(orders) == 120

    for order in orders:
        assert pack.training_prompt(order) == _full_training_string(components, order), order


@pytest.mark.real_data
def test_full_eval_prompt_plus_newline_is_exactly_one_training_variant(official_pack, layout, official_full_variants):
    assert len(official_full_variants) == 120
    full_plus_newline = layout["eval_prompts"][FULL] + "\n"

    matches = [order for text, order in official_full_variants.items() if text == full_plus_newline]

    assert matches == [FULL_EVAL_ORDER]
    assert FULL_EVAL_ORDER == (
        MEMORY_EFFICIENCY,
        FUNCTIONAL_CORRECTNESS,
        READABILITY_MAINTAINABILITY,
        RUNTIME_EFFICIENCY,
        SECURITY_HARDNESS,
    )
    assert official_pack.training_prompt(FULL_EVAL_ORDER) == full_plus_newline


@pytest.mark.parametrize("key", CRITERIA)
@pytest.mark.real_data
def test_single_criterion_training_prompt_is_eval_prompt_plus_blank_line(
    official_pack, layout, official_components, key
):
    training = official_pack.training_prompt((key,))

    assert training == layout["eval_prompts"][key] + "\n\n"
    assert training == _single_training_string(official_components, key)


def test_sampler_full_branch_draws_only_the_120_variants_and_covers_them(pack, full_variants):
    sampler = PromptSampler(pack, SamplingProbs(none=0.0, single=0.0, full=1.0), seed=7)

    drawn = [sampler.sample(RUNTIME_EFFICIENCY, index) for index in range(3000)]

    assert set(drawn) <= set(full_variants)
    assert len(set(drawn)) == 120


def test_sampler_default_draws_are_none_single_or_one_of_the_120_variants(pack, components, full_variants):
    sampler = PromptSampler(pack, seed=3)
    single = _single_training_string(components, SECURITY_HARDNESS)

    drawn = [sampler.sample(SECURITY_HARDNESS, index) for index in range(2000)]

    others = [text for text in drawn if text is not None and text != single]
    assert others, "the default probabilities must reach the full branch"
    assert set(others) <= set(full_variants)
    assert len(set(others)) >= 100


# -------------------------------------------------------------------------------------------- sampler
def _branch(text: str | None, single: str) -> str:
    if text is None:
        return "none"
    return "single" if text == single else "full"


def test_sampler_default_frequencies_are_15_60_25(pack, components):
    sampler = PromptSampler(pack, seed=0)
    single = _single_training_string(components, FUNCTIONAL_CORRECTNESS)
    n = 20_000

    counts = Counter(_branch(sampler.sample(FUNCTIONAL_CORRECTNESS, index), single) for index in range(n))

    assert counts["none"] / n == pytest.approx(0.15, abs=0.015)
    assert counts["single"] / n == pytest.approx(0.60, abs=0.015)
    assert counts["full"] / n == pytest.approx(0.25, abs=0.015)


@pytest.mark.real_data
def test_pack_sampling_matches_published_cumulative_thresholds(official_pack):
    assert official_pack.sampling == SamplingProbs(none=0.15, single=0.60, full=0.25)


def test_sampler_same_seed_gives_identical_sequence(pack):
    first = [PromptSampler(pack, seed=11).sample(MEMORY_EFFICIENCY, i) for i in range(300)]
    second = [PromptSampler(pack, seed=11).sample(MEMORY_EFFICIENCY, i) for i in range(300)]

    assert first == second


def test_sampler_different_seed_gives_different_sequence(pack):
    first = [PromptSampler(pack, seed=11).sample(MEMORY_EFFICIENCY, i) for i in range(300)]
    second = [PromptSampler(pack, seed=12).sample(MEMORY_EFFICIENCY, i) for i in range(300)]

    assert first != second


def test_sampler_draw_depends_only_on_seed_epoch_and_index_not_call_order(pack):
    indices = list(range(200))
    forward = PromptSampler(pack, seed=5)
    expected = {i: forward.sample(RUNTIME_EFFICIENCY, i, epoch=2) for i in indices}

    shuffled = PromptSampler(pack, seed=5)
    for i in [*reversed(indices[100:]), *indices[:100]]:
        shuffled.sample(SECURITY_HARDNESS, i + 1000)  # unrelated draws in between change nothing
        assert shuffled.sample(RUNTIME_EFFICIENCY, i, epoch=2) == expected[i]


def test_sampler_new_epoch_resamples(pack):
    sampler = PromptSampler(pack, seed=5)

    epoch0 = [sampler.sample(READABILITY_MAINTAINABILITY, i, epoch=0) for i in range(200)]
    epoch1 = [sampler.sample(READABILITY_MAINTAINABILITY, i, epoch=1) for i in range(200)]

    assert epoch0 != epoch1
    assert epoch0 == [sampler.sample(READABILITY_MAINTAINABILITY, i, epoch=0) for i in range(200)]


def test_sampler_honours_custom_probabilities(pack, components):
    single = _single_training_string(components, RUNTIME_EFFICIENCY)
    n = 4000

    always_none = PromptSampler(pack, SamplingProbs(none=1.0, single=0.0, full=0.0))
    always_single = PromptSampler(pack, SamplingProbs(none=0.0, single=1.0, full=0.0))
    half_half = PromptSampler(pack, SamplingProbs(none=0.5, single=0.0, full=0.5), seed=1)

    assert {always_none.sample(RUNTIME_EFFICIENCY, i) for i in range(200)} == {None}
    assert {always_single.sample(RUNTIME_EFFICIENCY, i) for i in range(200)} == {single}
    counts = Counter(_branch(half_half.sample(RUNTIME_EFFICIENCY, i), single) for i in range(n))
    assert counts["single"] == 0
    assert counts["none"] / n == pytest.approx(0.5, abs=0.03)


def test_sampler_uses_the_pack_sampling_by_default(pack):
    pack = replace(pack, sampling=SamplingProbs(none=1.0, single=0.0, full=0.0))

    assert {PromptSampler(pack).sample(RUNTIME_EFFICIENCY, i) for i in range(100)} == {None}


@pytest.mark.parametrize(
    ("none", "single", "full"),
    [(0.15, 0.60, 0.30), (0.2, 0.2, 0.2), (-0.1, 0.6, 0.5), (1.2, -0.2, 0.0)],
)
def test_invalid_sampling_probabilities_raise(none, single, full):
    with pytest.raises(PromptPackError, match="sum to 1"):
        SamplingProbs(none=none, single=single, full=full)


@pytest.mark.parametrize("aspect", ["Helpfulness", "Harmlessness", None])
def test_sampler_single_branch_gives_base_only_for_general_aspects(pack, components, aspect):
    sampler = PromptSampler(pack, SamplingProbs(none=0.0, single=1.0, full=0.0))

    assert {sampler.sample(aspect, i) for i in range(50)} == {components["base"] + "\n\n"}


def test_sampler_rejects_aspect_naming_several_criteria(pack):
    sampler = PromptSampler(pack, SamplingProbs(none=0.0, single=1.0, full=0.0))

    with pytest.raises(CriteriaError, match="exactly one criterion"):
        sampler.sample("runtime,security", 0)


# -------------------------------------------------------------------------------------------- resolve
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("fc", (FUNCTIONAL_CORRECTNESS,)),
        ("correctness", (FUNCTIONAL_CORRECTNESS,)),
        ("runtime", (RUNTIME_EFFICIENCY,)),
        ("memory", (MEMORY_EFFICIENCY,)),
        ("security", (SECURITY_HARDNESS,)),
        ("readability", (READABILITY_MAINTAINABILITY,)),
        ("FC", (FUNCTIONAL_CORRECTNESS,)),
        ("Runtime", (RUNTIME_EFFICIENCY,)),
        ("SECURITY", (SECURITY_HARDNESS,)),
        ("memory_efficiency", (MEMORY_EFFICIENCY,)),
        ("Readability_Maintainability", (READABILITY_MAINTAINABILITY,)),
        ("full", FULL_EVAL_ORDER),
        ("FULL", FULL_EVAL_ORDER),
        ("Full", FULL_EVAL_ORDER),
        ("none", ()),
        ("None", ()),
        ("", ()),
        (None, ()),
    ],
)
def test_resolve_accepts_aliases_case_insensitively(pack, spec, expected):
    assert pack.resolve(spec) == expected


def test_resolve_comma_list_returns_canonical_order(pack):
    assert pack.resolve("security, runtime") == (RUNTIME_EFFICIENCY, SECURITY_HARDNESS)
    assert pack.resolve(["SECURITY", "fc", "memory"]) == (
        MEMORY_EFFICIENCY,
        FUNCTIONAL_CORRECTNESS,
        SECURITY_HARDNESS,
    )


def test_resolve_order_is_independent_of_input_order(pack):
    names = ["security", "fc", "readability", "memory"]

    results = {pack.resolve(",".join(perm)) for perm in itertools.permutations(names)}

    assert results == {(MEMORY_EFFICIENCY, FUNCTIONAL_CORRECTNESS, READABILITY_MAINTAINABILITY, SECURITY_HARDNESS)}


def test_resolve_full_with_extra_names_is_still_full(pack):
    assert pack.resolve("runtime,full,none") == FULL_EVAL_ORDER


def test_unknown_criterion_error_lists_valid_names(pack):
    with pytest.raises(CriteriaError) as caught:
        pack.resolve("runtime,speed")

    message = str(caught.value)
    assert "unknown criterion 'speed'" in message
    for name in [*CRITERIA, FULL, "none", "fc", "runtime", "memory", "security", "readability"]:
        assert name in message


@pytest.mark.parametrize(
    ("spec", "label"),
    [
        ("none", "none"),
        ("full", FULL),
        ("fc,runtime,memory,security,readability", FULL),
        ("runtime", RUNTIME_EFFICIENCY),
        ("security,memory", "Memory_Efficiency+Security_Hardness"),
    ],
)
def test_selection_label_names_the_selection(pack, spec, label):
    assert pack.selection_label(pack.resolve(spec)) == label


def test_multi_criteria_subset_renders_in_full_style(pack, components):
    selection = pack.resolve("security,readability,fc")

    rendered = pack.eval_prompt(selection)

    assert selection == (FUNCTIONAL_CORRECTNESS, READABILITY_MAINTAINABILITY, SECURITY_HARDNESS)
    assert rendered == (
        components["base"]
        + "\n\n3. "
        + components[FUNCTIONAL_CORRECTNESS]
        + "\n\n4. "
        + components[READABILITY_MAINTAINABILITY]
        + "\n\n5. "
        + components[SECURITY_HARDNESS]
        + "\n"
    )


# ------------------------------------------------------------------------------- user-defined criteria
USER_CRITERIA_TOML = '''
[[criteria]]
key = "Thread_Safety"
title = "Thread Safety"
text = """Does the response avoid data races and deadlocks? Prefer responses that are safe under concurrency.
"""
aliases = ["threads", "TS"]

[[criteria]]
key = "API_Design"
title = "API Design"
text = "Is the interface small, consistent and hard to misuse?"
'''

THREAD_SAFETY_TEXT = (
    "**Thread Safety**: Does the response avoid data races and deadlocks? "
    "Prefer responses that are safe under concurrency."
)


@pytest.fixture
def user_pack(pack, tmp_path) -> PromptPack:
    path = tmp_path / "team_criteria.toml"
    path.write_text(USER_CRITERIA_TOML, encoding="utf-8")
    return pack.with_user_criteria(path)


def test_user_criteria_are_added_after_the_official_ones(user_pack, pack):
    assert user_pack.keys == (*CRITERIA, "Thread_Safety", "API_Design")
    assert user_pack.name == f"{pack.name}+team_criteria"
    assert user_pack.components["Thread_Safety"] == THREAD_SAFETY_TEXT
    assert dict(pack.components) == {k: user_pack.components[k] for k in CRITERIA}


@pytest.mark.parametrize("spec", ["Thread_Safety", "thread_safety", "threads", "THREADS", "ts"])
def test_user_criterion_resolves_by_key_or_alias(user_pack, spec):
    assert user_pack.resolve(spec) == ("Thread_Safety",)


def test_user_criterion_alone_renders_as_criterion_3(user_pack, components):
    assert user_pack.eval_prompt(user_pack.resolve("threads")) == (components["base"] + "\n\n3. " + THREAD_SAFETY_TEXT)
    assert user_pack.training_prompt(("Thread_Safety",)) == components["base"] + "\n\n3. " + THREAD_SAFETY_TEXT + "\n\n"


def test_user_criterion_in_subset_follows_official_ones(user_pack, components):
    selection = user_pack.resolve("api_design,threads,runtime")

    assert selection == (RUNTIME_EFFICIENCY, "Thread_Safety", "API_Design")
    assert user_pack.selection_label(selection) == "Runtime_Efficiency+Thread_Safety+API_Design"
    assert user_pack.eval_prompt(selection) == (
        components["base"]
        + "\n\n3. "
        + components[RUNTIME_EFFICIENCY]
        + "\n\n4. "
        + THREAD_SAFETY_TEXT
        + "\n\n5. **API Design**: Is the interface small, consistent and hard to misuse?\n"
    )


def test_user_criteria_keep_full_meaning_the_official_five(user_pack, pack):
    assert user_pack.resolve("full") == FULL_EVAL_ORDER
    assert user_pack.eval_prompt(user_pack.resolve("full")) == pack.eval_prompt(FULL_EVAL_ORDER)


def test_unknown_name_error_lists_user_criteria(user_pack):
    with pytest.raises(CriteriaError, match=r"Thread_Safety.*API_Design"):
        user_pack.resolve("nope")


def test_sampler_single_branch_uses_user_criterion(user_pack, components):
    sampler = PromptSampler(user_pack, SamplingProbs(none=0.0, single=1.0, full=0.0))

    assert sampler.sample("threads", 0) == components["base"] + "\n\n3. " + THREAD_SAFETY_TEXT + "\n\n"


THREAD_SAFETY_TABLE = '[[criteria]]\nkey = "Thread_Safety"\ntitle = "T"\ntext = "X."\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad_criteria.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_toml_error_names_the_file(pack, tmp_path):
    path = _write(tmp_path, '[[criteria]]\nkey = "Unterminated\n')

    with pytest.raises(PromptPackError, match="cannot read TOML") as caught:
        pack.with_user_criteria(path)

    assert str(path) in str(caught.value)


@pytest.mark.parametrize("field", ["key", "title", "text"])
def test_missing_field_error_names_file_and_field(pack, tmp_path, field):
    fields = {"key": '"Naming"', "title": '"Naming"', "text": '"Are names clear?"'}
    third = "\n".join(f"{name} = {value}" for name, value in fields.items() if name != field)
    path = _write(tmp_path, USER_CRITERIA_TOML + "\n[[criteria]]\n" + third + "\n")

    with pytest.raises(PromptPackError) as caught:
        pack.with_user_criteria(path)

    assert str(caught.value) == f"{path}: criteria[2].{field} must be a non-empty string"


def test_empty_field_error_names_file_and_field(pack, tmp_path):
    path = _write(tmp_path, '[[criteria]]\nkey = "Thread_Safety"\ntitle = "  "\ntext = "Races?"\n')

    with pytest.raises(PromptPackError, match=r"criteria\[0\]\.title must be a non-empty string"):
        pack.with_user_criteria(path)


def test_duplicate_key_error_names_file_and_field(pack, tmp_path):
    path = _write(tmp_path, USER_CRITERIA_TOML.replace('key = "API_Design"', 'key = "Thread_Safety"'))

    with pytest.raises(PromptPackError) as caught:
        pack.with_user_criteria(path)

    assert str(caught.value) == f"{path}: criteria[1].key 'Thread_Safety' is defined twice"


@pytest.mark.parametrize("key", ["Runtime_Efficiency", "runtime_efficiency", "Security", "full", "None", "all"])
def test_user_key_taking_an_existing_name_is_refused(pack, tmp_path, key):
    path = _write(tmp_path, f'[[criteria]]\nkey = "{key}"\ntitle = "T"\ntext = "Text."\n')

    with pytest.raises(PromptPackError, match=rf"criteria\[0\]\.key '{key}' is") as caught:
        pack.with_user_criteria(path)

    assert str(path) in str(caught.value)


@pytest.mark.parametrize("alias", ["runtime", "fc", "memory_efficiency", "full", "none"])
def test_user_alias_shadowing_an_existing_name_is_refused(pack, tmp_path, alias):
    path = _write(tmp_path, THREAD_SAFETY_TABLE + f'aliases = ["{alias}"]\n')

    with pytest.raises(PromptPackError, match=re.escape(f"{path.name}: criteria[0].aliases: '{alias}'")):
        pack.with_user_criteria(path)


def test_user_alias_must_be_a_list_of_strings(pack, tmp_path):
    path = _write(tmp_path, THREAD_SAFETY_TABLE + 'aliases = "threads"\n')

    with pytest.raises(PromptPackError, match=r"criteria\[0\]\.aliases must be a list of non-empty strings"):
        pack.with_user_criteria(path)


def test_criteria_written_as_single_table_is_refused(pack, tmp_path):
    path = _write(tmp_path, '[criteria]\nkey = "Thread_Safety"\ntitle = "T"\ntext = "X."\n')

    expected = "'criteria' must be an array of tables, written [[criteria]]"
    with pytest.raises(PromptPackError, match=re.escape(expected)):
        pack.with_user_criteria(path)


# -------------------------------------------------------------------------------------------- pack hash
@pytest.mark.real_data
def test_pack_sha256_is_stable(official_pack, official_prompts_path):
    assert official_pack.sha256 == OFFICIAL_PACK_SHA256
    assert load_pack_json(official_prompts_path).sha256 == OFFICIAL_PACK_SHA256


def test_pack_sha256_changes_when_a_text_changes(pack):
    runtime_text = pack.components[RUNTIME_EFFICIENCY] + " "
    changed_text = replace(pack, components={**pack.components, RUNTIME_EFFICIENCY: runtime_text})
    changed_base = replace(pack, base=pack.base.replace(" \n\n", "\n\n"))
    changed_sampling = replace(pack, sampling=SamplingProbs(none=0.2, single=0.55, full=0.25))

    digests = {p.sha256 for p in (pack, changed_text, changed_base, changed_sampling)}

    assert len(digests) == 4


def test_pack_sha256_ignores_the_pack_name(pack):
    assert replace(pack, name="renamed").sha256 == pack.sha256


# ------------------------------------------------------------------------------------ layout verification
@pytest.mark.real_data
def test_layout_with_altered_eval_prompt_is_refused_with_position(layout):
    altered = json.loads(json.dumps(layout))
    published = altered["eval_prompts"][RUNTIME_EFFICIENCY]
    altered["eval_prompts"][RUNTIME_EFFICIENCY] = published[:100] + "X" + published[101:]

    expected = r"'Runtime_Efficiency' does not match.*character 100, lengths 1739 vs 1739"
    with pytest.raises(PromptPackError, match=expected):
        pack_from_layout(altered, name="altered.json")


@pytest.mark.real_data
def test_layout_with_eval_prompt_missing_tail_reports_where_it_ends(layout):
    altered = json.loads(json.dumps(layout))
    altered["eval_prompts"][FULL] = altered["eval_prompts"][FULL].rstrip("\n")

    with pytest.raises(PromptPackError, match=r"'Full' does not match.*character 3397, lengths 3398 vs 3397"):
        pack_from_layout(altered, name="altered.json")


@pytest.mark.real_data
def test_layout_without_a_criterion_is_refused(layout):
    altered = json.loads(json.dumps(layout))
    del altered["train_components"][SECURITY_HARDNESS]
    del altered["eval_prompts"]

    with pytest.raises(PromptPackError, match=r"lacks criteria \['Security_Hardness'\]"):
        pack_from_layout(altered, name="altered.json")
