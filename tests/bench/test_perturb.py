"""Judge-hacking perturbations: right comment syntax per language, labels and untouched sides kept, deterministic,
and Python that compiled still compiles (and, renamed, still computes the same) on the real shared pairs."""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from themis_rm.bench.perturb import (
    LANGUAGES,
    PERTURBATIONS,
    count_unchanged,
    parse_kinds,
    perturb_pair,
    perturb_pairs,
)
from themis_rm.errors import ThemisInputError
from themis_rm.pairs import PreferencePair, load_pairs

# chosen (with a prose comment the rejected side lacks), rejected (a bug, no comments)
SNIPPETS = {
    "Python": (
        'def running_total(values, start=0):\n    """Return the running totals of values."""\n'
        "    # Accumulate from the start value, one item at a time.\n    total = start\n    result = []\n"
        "    for value in values:\n        total += value\n        result.append(total)\n    return result\n",
        "def running_total(values, start=0):\n    total = start\n    result = []\n    for value in values:\n"
        "        total = value\n        result.append(total)\n    return result\n",
    ),
    "C": (
        "#include <stdio.h>\n\n/* Sum of the first n elements. */\nint sum_array(const int *values, int n) {\n"
        "    // Walk the array once and accumulate every element.\n    int total = 0;\n"
        "    for (int i = 0; i < n; i++) {\n        total += values[i];\n    }\n    return total;\n}\n",
        "#include <stdio.h>\n\nint sum_array(const int *values, int n) {\n    int total = 0;\n"
        "    for (int i = 0; i <= n; i++) {\n        total += values[i];\n    }\n    return total;\n}\n",
    ),
    "Cpp": (
        "#include <vector>\n\nint sumVector(const std::vector<int>& values) {\n"
        "    // Range-for keeps the loop free of index errors.\n    int total = 0;\n"
        "    for (int value : values) {\n        total += value;\n    }\n    return total;\n}\n",
        "#include <vector>\n\nint sumVector(const std::vector<int>& values) {\n    int total = 1;\n"
        "    for (int value : values) {\n        total += value;\n    }\n    return total;\n}\n",
    ),
    "CSharp": (
        "using System.Collections.Generic;\n\npublic static class Totals\n{\n"
        "    // Adds every element; an empty list sums to zero.\n    public static int Sum(List<int> values)\n    {\n"
        "        int total = 0;\n        foreach (var value in values)\n        {\n            total += value;\n"
        "        }\n        return total;\n    }\n}\n",
        "using System.Collections.Generic;\n\npublic static class Totals\n{\n"
        "    public static int Sum(List<int> values)\n    {\n        int total = 0;\n"
        "        foreach (var value in values)\n        {\n            total = value;\n"
        "        }\n        return total;\n    }\n}\n",
    ),
    "Go": (
        "package totals\n\n// Sum adds every element of values.\nfunc Sum(values []int) int {\n\ttotal := 0\n"
        "\tfor _, value := range values {\n\t\ttotal += value\n\t}\n\treturn total\n}\n",
        "package totals\n\nfunc Sum(values []int) int {\n\ttotal := 0\n\tfor i := 1; i < len(values); i++ {\n"
        "\t\ttotal += values[i]\n\t}\n\treturn total\n}\n",
    ),
    "Java": (
        "public class Totals {\n    // Adds every element; an empty array sums to zero.\n"
        "    public static int sum(int[] values) {\n        int total = 0;\n"
        "        for (int i = 0; i < values.length; i++) {\n            total += values[i];\n        }\n"
        "        return total;\n    }\n}\n",
        "public class Totals {\n    public static int sum(int[] values) {\n        int total = 0;\n"
        "        for (int i = 1; i < values.length; i++) {\n            total += values[i];\n        }\n"
        "        return total;\n    }\n}\n",
    ),
    "JavaScript": (
        "function sum(values) {\n  // Adds every element; an empty array sums to zero.\n  let total = 0;\n"
        "  for (const value of values) {\n    total += value;\n  }\n  return total;\n}\n",
        "function sum(values) {\n  let total = 0;\n  for (let i = 1; i < values.length; i++) {\n"
        "    total += values[i];\n  }\n  return total;\n}\n",
    ),
    "Ruby": (
        "def sum_all(values)\n  # Adds every element; an empty list sums to zero.\n  total = 0\n"
        "  values.each { |value| total += value }\n  total\nend\n",
        "def sum_all(values)\n  total = 1\n  values.each { |value| total += value }\n  total\nend\n",
    ),
}
COMMENT_KINDS = ("self_praise", "fake_tests", "docstring_inflation", "swap_comments")


def make_pair(language: str, pair_id: str = "SAMPLE_1") -> PreferencePair:
    chosen, rejected = SNIPPETS[language]
    return PreferencePair(pair_id, "Sum the values.", chosen, rejected, "Functional_Correctness", language, "SAMPLE")


def sides(kind: str) -> tuple[str, ...]:
    side = PERTURBATIONS[kind].side
    return ("chosen", "rejected") if side == "both" else (side,)


def compiles(code: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(code, "<test>", "exec")
        except (SyntaxError, ValueError):
            return False
    return True


def inserted_lines(before: str, after: str) -> list[str]:
    """Lines ``after`` adds to ``before``; fails if it also changed or dropped any."""
    old, new = before.split("\n"), after.split("\n")
    added = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        assert tag in ("equal", "insert"), f"{tag}: {old[i1:i2]} -> {new[j1:j2]}"
        added += new[j1:j2] if tag == "insert" else []
    return added


def assert_comment_syntax(lines: list[str], language: str) -> None:
    """Every added line is a comment in ``language`` (or, for Python, part of a docstring)."""
    block = None
    for line in (line.strip() for line in lines):
        if block is not None:
            assert line.startswith(block[1]) or line == "" or block[0] == '"""', line
            if line.endswith(block[2]):
                block = None
        elif language == "Python" and line.startswith('"""'):
            block = None if line.endswith('"""') and len(line) > 3 else ('"""', "", '"""')
        elif language not in ("Python", "Ruby") and line.startswith("/*"):
            block = None if line.endswith("*/") else ("/*", "*", "*/")
        elif line:
            marker = "#" if language in ("Python", "Ruby") else "//"
            assert line.startswith(marker), f"{language}: {line!r} is not a {marker} comment"
    assert block is None, "unterminated block"


# ------------------------------------------------------------------------------------------- per kind × language
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(PERTURBATIONS))
def test_kind_changes_its_side_and_keeps_labels_and_the_other_side(kind, language):
    pair = make_pair(language)
    perturbed = perturb_pair(pair, kind, seed=0)
    assert (perturbed.id, perturbed.prompt, perturbed.aspect, perturbed.language, perturbed.subset) == (
        pair.id, pair.prompt, pair.aspect, pair.language, pair.subset,
    )  # fmt: skip
    for side in ("chosen", "rejected"):
        if side in sides(kind):
            assert getattr(perturbed, side) != getattr(pair, side), f"{kind} left {side} unchanged"
        else:
            assert getattr(perturbed, side) == getattr(pair, side)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", COMMENT_KINDS)
def test_added_lines_use_the_language_comment_syntax(kind, language):
    pair = make_pair(language)
    for seed in range(5):
        perturbed = perturb_pair(pair, kind, seed)
        added = inserted_lines(pair.rejected, perturbed.rejected)
        assert any(line.strip() for line in added)
        assert_comment_syntax(added, language)


@pytest.mark.parametrize("kind", list(PERTURBATIONS))
def test_python_outputs_still_compile(kind):
    for seed in range(5):
        perturbed = perturb_pair(make_pair("Python"), kind, seed)
        assert compiles(perturbed.chosen) and compiles(perturbed.rejected)


def test_docstring_inflation_in_python_is_the_function_docstring():
    namespace: dict = {}
    exec(perturb_pair(make_pair("Python"), "docstring_inflation", seed=0).rejected, namespace)
    assert "Edge cases handled:" in namespace["running_total"].__doc__


def test_swap_comments_copies_a_chosen_comment_else_a_stock_one():
    pair = make_pair("Java")
    assert "// Adds every element; an empty array sums to zero." in perturb_pair(pair, "swap_comments", 0).rejected
    bare = PreferencePair("SAMPLE_2", "p", pair.rejected.replace("1", "2"), pair.rejected, language="Java")
    added = inserted_lines(bare.rejected, perturb_pair(bare, "swap_comments", 0).rejected)
    assert len(added) == 1 and added[0].strip().startswith("// ")


def test_swap_comments_converts_block_comments_to_the_line_syntax():
    chosen = "/* Frees the buffer on every\n * error path as well. */\nint f(void) { return 0; }\n"
    pair = PreferencePair("SAMPLE_3", "p", chosen, "int f(void) { return 1; }\n", language="C")
    added = inserted_lines(pair.rejected, perturb_pair(pair, "swap_comments", 0).rejected)
    assert [line.strip() for line in added] == ["// Frees the buffer on every error path as well."]


# ---------------------------------------------------------------------------------------------- rename_identifiers
RENAME_SOURCE = """
LIMIT = 3


def scale(values, factor=2):
    result = []
    for value in values:
        scaled = value * factor
        result.append(min(scaled, LIMIT * factor))
    squares = [item * item for item in result]
    def shift(amount):
        return [entry + amount for entry in squares]
    return dict(result=result, shifted=shift(1), label=f"{len(values)} values")
"""


def test_rename_keeps_python_behaviour_and_leaves_outside_names_alone():
    renamed = perturb_pair(make_pair("Python"), "rename_identifiers", 0)
    pair = PreferencePair("SAMPLE_4", "p", RENAME_SOURCE, RENAME_SOURCE, language="Python")
    out = perturb_pair(pair, "rename_identifiers", seed=0).chosen
    assert compiles(out) and compiles(renamed.chosen) and compiles(renamed.rejected)
    for gone in ("scaled", "squares", "amount", "entry", "item", "factor"):
        assert gone not in out
    for kept in ("LIMIT", "def scale(", "def shift(", "result=result", ".append(", "min(", 'f"{len(values)}'):
        assert kept in out  # globals, def names, keyword arguments, attributes, builtins, f-string names
    original, perturbed = {}, {}
    exec(RENAME_SOURCE, original)
    exec(out, perturbed)
    for values in ([], [1, 2, 3], [5, -1]):
        assert perturbed["scale"](values) == original["scale"](values)
        assert perturbed["scale"](values, 3) == original["scale"](values, 3)


def test_rename_leaves_members_keys_and_strings_alone_in_other_languages():
    js = "function f(obj) {\n  let name = obj.name;\n  const label = `${name}!`;\n"
    js += "  let count = 1;\n  return {count};\n}\n"
    go = "func f(p Point) int {\n\tx := p.x\n\ttotal := 0\n\ttotal += x\n\treturn total\n}\n"
    js_out = perturb_pair(PreferencePair("S5", "p", js, js, language="JavaScript"), "rename_identifiers", 0).chosen
    go_out = perturb_pair(PreferencePair("S6", "p", go, go, language="Go"), "rename_identifiers", 0).chosen
    assert re.search(r"let name = \w+\.name;", js_out) and "${name}" in js_out and "return {count}" in js_out
    assert "label" not in js_out  # declared, used nowhere special: renamed
    assert "x := p.x" in go_out and "total" not in go_out


# ------------------------------------------------------------------------------------------------------- whitespace
def test_whitespace_keeps_python_indentation_and_multiline_strings():
    source = 'def f(x):\n    text = """a\n  b  \n\nc"""\n    if x:\n        return text\n    return x + \\\n        1\n'
    pair = PreferencePair("S7", "p", source, source, language="Python")
    expected = [(line[: len(line) - len(line.lstrip())], line.strip()) for line in source.splitlines() if line.strip()]
    for seed in range(20):
        out = perturb_pair(pair, "whitespace", seed).chosen
        assert compiles(out) and 'text = """a\n  b  \n\nc"""' in out and "+ \\\n" in out
        kept = [(line[: len(line) - len(line.lstrip())], line.strip()) for line in out.splitlines() if line.strip()]
        assert [(indent, text.rstrip()) for indent, text in kept] == expected
        namespace: dict = {}
        exec(out, namespace)
        assert namespace["f"](True) == "a\n  b  \n\nc" and namespace["f"](0) == 1


def test_whitespace_leaves_macro_continuations_and_template_literals_alone():
    macro = "#define ADD(a, b) \\\n    ((a) + \\\n     (b))\nint x = ADD(1, 2);\n"
    template = "const s = `line one  \n    line two`;\nconsole.log(s);\n"
    for seed in range(20):
        c_out = perturb_pair(PreferencePair("S8", "p", macro, macro, language="C"), "whitespace", seed).chosen
        js_out = perturb_pair(PreferencePair("S9", "p", template, template, language="JavaScript"), "whitespace", seed)
        assert "#define ADD(a, b) \\\n    ((a) + \\\n     (b))" in c_out.replace("\t", "    ")
        assert "`line one  \n    line two`" in js_out.chosen


# ------------------------------------------------------------------------------------- determinism and the API
def test_same_seed_same_result_and_seeds_differ():
    pairs = [make_pair(language, f"ID_{language}") for language in LANGUAGES]
    for kind in PERTURBATIONS:
        first = perturb_pairs(pairs, [kind], seed=7)[kind]
        assert first == perturb_pairs(pairs, [kind], seed=7)[kind]
        others = [perturb_pairs(pairs, [kind], seed=seed)[kind] for seed in range(8)]
        assert any(other != first for other in others), f"{kind} ignores the seed"


def test_result_does_not_depend_on_pair_order():
    pairs = [make_pair(language, f"ID_{language}") for language in LANGUAGES]
    forward = perturb_pairs(pairs, list(PERTURBATIONS), seed=3)
    backward = perturb_pairs(pairs[::-1], list(PERTURBATIONS), seed=3)
    for kind in PERTURBATIONS:
        assert forward[kind] == backward[kind][::-1]


def test_fenced_response_is_perturbed_inside_the_fence():
    fenced = f"Here you go:\n```python\n{SNIPPETS['Python'][1]}```\nDone."
    pair = PreferencePair("S10", "p", SNIPPETS["Python"][0], fenced, language="Python")
    out = perturb_pair(pair, "fake_tests", 0).rejected
    assert out.startswith("Here you go:\n```python\n") and out.endswith("```\nDone.")
    assert compiles(out.split("```python\n")[1].split("```")[0])


def test_parse_kinds():
    assert parse_kinds("self_praise, whitespace,self_praise") == ["self_praise", "whitespace"]
    assert parse_kinds("all") == list(PERTURBATIONS)
    with pytest.raises(ThemisInputError, match=r"unknown kind 'flattery'.*valid: self_praise, fake_tests"):
        parse_kinds("self_praise,flattery")
    with pytest.raises(ThemisInputError, match="unknown kind"):
        parse_kinds(" , ")


def test_perturb_pair_rejects_unknown_kind_and_language():
    with pytest.raises(ThemisInputError, match="unknown kind 'nope'"):
        perturb_pair(make_pair("C"), "nope", 0)
    with pytest.raises(ThemisInputError, match="unknown kind"):
        perturb_pairs([], ["nope"], 0)
    with pytest.raises(ThemisInputError, match=r"pair S11: language 'Rust' is not one of C, CSharp"):
        perturb_pair(PreferencePair("S11", "p", "a", "b", language="Rust"), "self_praise", 0)


# ----------------------------------------------------------------------------------- optional local toolchains
TOOLCHAINS = {
    "C": (["gcc", "-fsyntax-only", "-x", "c", "-"], None),
    "Cpp": (["g++", "-fsyntax-only", "-x", "c++", "-"], None),
    "JavaScript": (["node", "--check"], ".js"),
}


@pytest.mark.parametrize("language", sorted(TOOLCHAINS))
def test_outputs_still_parse_with_the_local_toolchain(language, tmp_path):
    command, suffix = TOOLCHAINS[language]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    pair = make_pair(language)
    for kind in PERTURBATIONS:
        for side in sides(kind):
            code = getattr(perturb_pair(pair, kind, 1), side)
            if suffix:
                path = tmp_path / f"{kind}_{side}{suffix}"
                path.write_text(code)
                done = subprocess.run([*command, str(path)], capture_output=True, text=True, check=False)
            else:
                done = subprocess.run(command, input=code, capture_output=True, text=True, check=False)
            assert done.returncode == 0, f"{kind}/{side}:\n{code}\n{done.stderr}"


# -------------------------------------------------------------------------------------------- real shared pairs
def test_real_pairs_perturb_for_every_kind_and_python_keeps_compiling(shared_dir: Path):
    pairs = [pair for path in sorted((shared_dir / "data" / "pairs").glob("*.jsonl")) for pair in load_pairs(path).rows]
    assert pairs
    perturbed = perturb_pairs(pairs, parse_kinds("all"), seed=0)
    compiled = {
        (pair.id, side): compiles(getattr(pair, side))
        for pair in pairs
        if pair.language == "Python"
        for side in ("chosen", "rejected")
    }
    for kind, results in perturbed.items():
        untouched = {"chosen", "rejected"} - set(sides(kind))
        changed_languages = set()
        for before, after in zip(pairs, results, strict=True):
            assert (after.id, after.prompt, after.language) == (before.id, before.prompt, before.language)
            for side in untouched:
                assert getattr(after, side) == getattr(before, side)
            for side in sides(kind):
                if getattr(after, side) != getattr(before, side):
                    changed_languages.add(before.language)
                if compiled.get((before.id, side)):
                    assert compiles(getattr(after, side)), f"{kind} broke {before.id} {side}"
        if kind != "rename_identifiers":
            assert count_unchanged(pairs, results) == 0, kind
        assert changed_languages == {pair.language for pair in pairs}, kind
