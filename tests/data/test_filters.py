"""Record filters: message rules, allowlists, token length and tree-sitter AST depth, each with its drop reason."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("datatrove")

from themis_rm.data.base import Document
from themis_rm.data.filters import (
    Blocklist,
    CommitMessageFilter,
    LicenseAllowlistFilter,
    MessageRules,
    RepoAllowlistFilter,
    TokenLengthFilter,
    TokenLimits,
)
from themis_rm.data.syntax import AstDepthFilter
from themis_rm.errors import ThemisInputError


def doc(new="x = 2\n", old="x = 1\n", **meta) -> Document:
    return Document(text=new, id="d", metadata={"old_contents": old, "message": "Fix the value of x", **meta})


def run(step, docs):
    kept = list(step.run(iter(docs)))
    return kept, {k: v.total for k, v in step.stats.stats.items() if k.startswith("dropped_")}


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ("Fix off-by-one in range check", True),
        ("short msg", False),  # 9 characters
        ("exactly 10", False),  # the reference keeps strictly more than 10
        ("Fix typo.", False),
        ("Update README.md", False),
        ("Update main.py", False),
        ("Merge branch 'dev' into main", False),
        ('Revert "Add caching"', False),
        ("Bump lodash from 4.17.15 to 4.17.21", False),
        ("WIP: parser rewrite", False),
        ("1.2.3", False),
        ("Add caching to the resolver", True),
        ("Update the parser to handle tabs", True),
        ("x" * 15000, False),
    ],
)
def test_message_rules(message, kept):
    out, dropped = run(CommitMessageFilter(), [doc(message=message)])
    assert bool(out) is kept
    if not kept:
        assert set(dropped) <= {"dropped_message_length", "dropped_message_blocklist"} and dropped


def test_custom_blocklist_and_bad_regex(tmp_path):
    path = tmp_path / "block.txt"
    path.write_text("# ours\nfix the value of x\n")
    out, dropped = run(CommitMessageFilter(MessageRules(blocklist=str(path))), [doc()])
    assert out == [] and dropped == {"dropped_message_blocklist": 1}
    with pytest.raises(ThemisInputError, match=r"block.txt:1: bad regular expression"):
        Blocklist(["re:(unclosed"], "block.txt")


def test_repo_and_license_allowlists(tmp_path):
    allow = tmp_path / "python.json"
    allow.write_text(json.dumps(["Acme/KV", "other/repo"]))
    out, dropped = run(RepoAllowlistFilter([str(allow)]), [doc(repo="acme/kv"), doc(repo="evil/fork")])
    assert [d.metadata["repo"] for d in out] == ["acme/kv"] and dropped == {"dropped_repo_allowlist": 1}

    step = LicenseAllowlistFilter(["MIT", "apache-2.0"])
    out, dropped = run(step, [doc(license="mit"), doc(license="gpl-3.0"), doc(license=None)])
    assert [d.metadata["license"] for d in out] == ["mit", None]
    assert dropped == {"dropped_license": 1} and step.stats["license_unknown"].total == 1
    out, dropped = run(LicenseAllowlistFilter(["mit"], drop_unknown=True), [doc(license=None)])
    assert out == [] and dropped == {"dropped_license_unknown": 1}


def test_allowlist_must_be_a_json_list(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"acme/kv": true}')
    with pytest.raises(ThemisInputError, match="expected a JSON list"):
        RepoAllowlistFilter([str(bad)])


def test_token_length_counts_both_versions(tmp_path, qwen_tokenizer):
    qwen_tokenizer.save_pretrained(tmp_path / "tok")
    step = TokenLengthFilter(TokenLimits(str(tmp_path / "tok"), min_tokens=3, max_tokens=40))
    docs = [doc(), doc(new="x", old="x = 1\n"), doc(new="y = [" + "1, " * 50 + "]\n")]
    out, dropped = run(step, docs)
    assert len(out) == 1 and dropped == {"dropped_too_few_tokens": 1, "dropped_too_many_tokens": 1}


SOURCES = {
    "Python": ("a.py", "def f(x):\n    if x:\n        return [i for i in range(x)]\n"),
    "JavaScript": ("a.jsx", "function f(x) { if (x) { return <div>{x}</div>; } }\n"),
    "TypeScript": ("a.ts", "function f(x: number): number { if (x) { return x * 2; } return 0; }\n"),
    "Java": ("A.java", "class A { int f(int x) { if (x > 0) { return x; } return 0; } }\n"),
    "Go": ("a.go", "package a\n\nfunc F(x int) int {\n\tif x > 0 {\n\t\treturn x\n\t}\n\treturn 0\n}\n"),
    "Ruby": ("a.rb", "def f(x)\n  if x > 0\n    x * 2\n  end\nend\n"),
    "C": ("a.c", "int f(int x) { if (x > 0) { return x; } return 0; }\n"),
    "Cpp": ("a.hpp", "template <typename T> T f(T x) { if (x > 0) { return x; } return T{}; }\n"),
    "CSharp": ("A.cs", "class A { int F(int x) { if (x > 0) { return x; } return 0; } }\n"),
}


@pytest.mark.parametrize("language", sorted(SOURCES))
def test_every_language_parses_and_is_deep_enough(language):
    path, source = SOURCES[language]
    out, dropped = run(AstDepthFilter(5), [doc(new=source, old=source, language=language, path=path)])
    assert len(out) == 1, dropped


def test_tsx_uses_the_tsx_grammar():
    source = "const A = (p: {x: number}) => <div>{p.x}</div>;\n"
    out, dropped = run(AstDepthFilter(3), [doc(new=source, old=source, language="TypeScript", path="a.tsx")])
    assert len(out) == 1, dropped
    out, dropped = run(AstDepthFilter(3), [doc(new=source, old=source, language="TypeScript", path="a.ts")])
    assert out == [] and dropped == {"dropped_unparseable": 1}


def test_unparseable_shallow_and_unknown_languages_are_dropped_and_counted():
    docs = [
        doc(new="def f(:\n", language="Python", path="a.py"),  # new version does not parse
        doc(old="int main( {", new="int main() { return 0; }", language="C", path="a.c"),  # old version
        doc(new="pass\n", old="pass\n", language="Python", path="a.py"),  # module > pass_statement: depth 2
        doc(language="Kotlin", path="a.kt"),
        doc(language="Python", path="a.py"),
    ]
    out, dropped = run(AstDepthFilter(3), docs)
    assert len(out) == 1
    assert dropped == {"dropped_unparseable": 2, "dropped_ast_depth": 1, "dropped_no_grammar": 1}
