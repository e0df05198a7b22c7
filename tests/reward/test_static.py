"""The static analysers per language, on the real tools: ruff/bandit/radon (Python), ESLint from npm
(JavaScript), clang-tidy from PyPI (C, C++) — each in both directions, and none switched off by the candidate."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from themis_rm.cli import app
from themis_rm.errors import ThemisError, ThemisInputError
from themis_rm.reward.composite import CompositeReward
from themis_rm.reward.groups import RewardGroup
from themis_rm.reward.spec import load_reward_spec
from themis_rm.reward.static import analyse, check_analyzers, coverage


def _codes(result) -> set[str]:
    return {f["code"] for f in result.findings}


JS_CLEAN = "function add(a, b) {\n  return a + b;\n}\n"
JS_RISKY = """\
const cp = require("child_process");
/* eslint-disable */
function run(cmd, user) { // eslint-disable-line
  var unused = 1;
  eval(user);
  cp.exec("ls " + user);
  if (cmd == null) {
    for (const c of user) { if (c) { return 1; } }
  }
  return 2;
}
"""
JS_MODULE = 'import fs from "node:fs";\nexport function read(name) {\n  return fs.readFileSync(name, "utf8");\n}\n'


def test_eslint_reads_javascript_in_both_directions_and_ignores_inline_directives(eslint_analyzer):
    programs = [JS_CLEAN, JS_RISKY, JS_MODULE, "function ( {"]
    languages = ["JavaScript"] * 4
    lint = analyse("lint", programs, languages)
    assert lint[0].value == 0.0 and lint[0].findings == []
    assert {"no-var", "no-unused-vars", "eqeqeq"} <= _codes(lint[1])  # eslint-disable had no effect
    assert lint[1].value == -len(lint[1].findings) and lint[2].value == 0.0  # an ES module parses as one
    assert lint[3].value == -1.0 and _codes(lint[3]) == {"syntax"}
    security = analyse("security", programs, languages)
    assert security[0].value == 0.0 and security[2].value == -1.0  # fs read of a non-literal name
    assert {"no-eval", "security/detect-eval-with-expression", "security/detect-child-process"} <= _codes(security[1])
    assert security[3].value is None and security[3].note.startswith("eslint could not parse it")
    complexity = analyse("complexity", programs, languages)
    assert complexity[0].value == -1.0 and complexity[1].value == -4.0  # run: 1 + if + for + if
    assert complexity[1].findings[0]["complexity"] == 4


C_RISKY = """\
#include <stdlib.h>
#include <string.h>
int copy(char *dst, const char *src) {
    strcpy(dst, src); // NOLINT
    return system(src); // NOLINTNEXTLINE
}
"""
C_CLEAN = "int add(int a, int b) { return a + b; }\n"
CPP_NESTED = """\
#include <vector>
int count(const std::vector<int>& v) {
    int n = 0;
    for (int x : v) { if (x > 0) { if (x < 9) { n++; } } }
    return n;
}
"""


def test_clang_tidy_reads_c_and_cpp_in_both_directions_and_nolint_does_not_hide_a_finding():
    security = analyse("security", [C_CLEAN, C_RISKY], ["C", "C"])
    assert security[0].value == 0.0
    assert {"clang-analyzer-security.insecureAPI.strcpy", "bugprone-command-processor"} <= _codes(security[1])
    assert security[1].findings[0]["line"] == 4
    lint = analyse("lint", [C_CLEAN, CPP_NESTED], ["C", "Cpp"])
    assert lint[0].value == 0.0 and "readability-redundant-nested-if" not in _codes(lint[0])
    assert lint[1].value < 0 and "readability-braces-around-statements" not in _codes(lint[1])
    complexity = analyse("complexity", [C_CLEAN, CPP_NESTED], ["C", "Cpp"])
    assert complexity[0].value == 0.0 and complexity[1].value == -6.0  # for +1, if +2, if +3 (nesting)
    assert complexity[1].note == "cognitive complexity (clang-tidy)"


def test_clang_tidy_contains_what_a_candidate_includes():
    """A program that does not compile has no security value; an included file's text never reaches the evidence."""
    programs = ['#include "/etc/passwd"\nint f(void) { return 0; }\n', "int main( {\n"]
    for result in analyse("security", programs, ["C", "C"]):
        assert result.value is None and result.note.startswith("clang could not compile it")
    lint = analyse("lint", programs, ["C", "C"])
    assert lint[0].value < 0 and "root:" not in json.dumps([r.evidence() for r in lint])


def test_python_suppression_comments_do_not_switch_off_ruff_or_bandit():
    program = "import os  # noqa\n\n\ndef run(x):\n    return eval(x)  # nosec\n"
    ruff, bandit = analyse("lint", [program], ["Python"])[0], analyse("security", [program], ["Python"])[0]
    assert "F401" in _codes(ruff) and _codes(bandit) == {"B307"} and bandit.value == -2.0


def test_a_missing_tool_is_reported_for_the_languages_that_need_it(tmp_path, monkeypatch):
    monkeypatch.setenv("THEMIS_ANALYZERS", str(tmp_path / "none"))  # no ESLint here
    assert coverage(["lint"])["lint"]["JavaScript"].startswith("unavailable: not installed in")
    check_analyzers(["lint", "security"])  # Python and C are read: the spec itself is fine
    check_analyzers(["lint"], {"Python", "C"})
    with pytest.raises(ThemisError, match=r"lint \(JavaScript\): .*themis analyzers install"):
        check_analyzers(["lint"], {"Python", "JavaScript"})
    spec = load_reward_spec({"components": [{"kind": "static", "analyzer": "security"}]})
    js = RewardGroup("js", "p", [JS_CLEAN], language="JavaScript")
    with pytest.raises(ThemisError, match=r"security \(JavaScript\)"):
        CompositeReward(spec).score([js])  # before anything runs
    (go,) = CompositeReward(spec).score([RewardGroup("go", "p", ["package main"], language="Go")])[0].candidates
    assert go.raw["static:security"] is None  # Go has no analyser: no value, and the reason
    assert go.evidence["static:security"]["note"] == "security reads Python, JavaScript, C, Cpp, not Go"


def test_rules_belong_to_ruff_only():
    with pytest.raises(ThemisInputError, match="'rules' is ruff's rule selection"):
        load_reward_spec({"components": [{"kind": "static", "analyzer": "security", "rules": "B"}]})
    spec = load_reward_spec({"components": [{"kind": "static", "analyzer": "lint", "rules": "F"}]})
    (clean,) = CompositeReward(spec).score([RewardGroup("py", "p", ["x=1\n"])])[0].candidates
    assert clean.raw["static:lint"] == 0.0  # E225 is not selected


def test_composite_scores_a_javascript_group_with_tests_and_analysers(eslint_analyzer):
    spec = load_reward_spec(
        {
            "components": [
                {"kind": "tests", "weight": 1.0},
                {"kind": "static", "analyzer": "lint", "weight": 0.1},
                {"kind": "static", "analyzer": "security", "weight": 0.5},
            ],
            "execution": {"timeout_s": 5, "workers": 2},
        }
    )
    sloppy = "function add(a, b) {\n  var s = eval('a + b');\n  return s;\n}\n"
    group = RewardGroup(
        "js",
        "Write add(a, b).",
        [JS_CLEAN, sloppy],
        language="JavaScript",
        entry_point="add",
        tests=["assert candidate(1, 2) == 3"],  # the Python judge calls into node,
    )
    clean, bad = CompositeReward(spec).score([group])[0].candidates
    assert clean.raw == {"tests": 1.0, "static:lint": 0.0, "static:security": 0.0}
    assert bad.raw["tests"] == 1.0 and bad.raw["static:lint"] < 0 and bad.raw["static:security"] < 0
    assert clean.reward > bad.reward


def test_analyzers_cli_reports_coverage(eslint_analyzer):
    result = CliRunner().invoke(app, ["analyzers", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["security"] == {"Python": "bandit", "JavaScript": "eslint", "C": "clang-tidy", "Cpp": "clang-tidy"}
