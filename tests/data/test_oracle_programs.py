"""The oracles for C and JavaScript programs (packaged seeds, input/output cases, clang-tidy and ESLint), in both
directions, and the shared real security pairs verified by the analysers."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from themis_rm.cli import app
from themis_rm.data.bugs import MutateConfig, languages_asked, run_mutation
from themis_rm.data.oracles.measure import CostRule, runtime_verdict
from themis_rm.data.oracles.programs import (
    ProgramsConfig,
    load_seed_programs,
    measure_programs,
    scaled_input,
    verify_programs,
)
from themis_rm.data.oracles.text_operators import (
    FUNCTIONAL,
    MEMORY,
    READABILITY,
    RUNTIME,
    SECURITY,
    braces_removed,
    parse,
    set_to_array,
    text_variants,
)
from themis_rm.data.oracles.verify import verify_security_pairs
from themis_rm.reward.static import analyse

CONFIG = ProgramsConfig(max_variants=2)


def _seeds(*ids: str):
    return [seed for seed in load_seed_programs() if seed.task_id in ids]


@pytest.fixture(scope="module")
def verified(request):
    """Every criterion on C and JavaScript runtime seeds, the memory seed and both security seeds (ESLint
    installed)."""
    request.getfixturevalue("eslint_analyzer")
    seeds = _seeds("C/distinct_count", "C/distinct_flags", "C/greet", "JavaScript/repeats", "JavaScript/settings_keys")
    return verify_programs(seeds, [FUNCTIONAL, RUNTIME, MEMORY, SECURITY, READABILITY], CONFIG)


def _kept(result, criterion: str, operator: str) -> list[dict]:
    return [p for p in result.pairs if p["aspect"] == criterion and p["evidence"]["operator"] == operator]


def test_a_quadratic_c_sort_is_kept_slower_and_remeasures_slower(verified):
    (pair,) = _kept(verified, RUNTIME, "c_qsort_to_insertion_sort")
    evidence = pair["evidence"]
    assert pair["language"] == "C" and pair["subset"] == "ORACLE_C_QSORT_TO_INSERTION_SORT"
    assert (
        evidence["p_value"] < 0.01 and evidence["median_ratio"] >= 1.5 and evidence["tests"] == {"passed": 3, "of": 3}
    )
    assert len(evidence["reference_seconds"]) == len(evidence["variant_seconds"]) == 5
    reference, variant = measure_programs(pair["chosen"], pair["rejected"], "C", scaled_input(20000), CostRule())
    assert reference.results == variant.results and len(reference.results) == 1  # same output on the large input
    assert statistics.median(variant.seconds) > 1.5 * statistics.median(reference.seconds)


def test_a_program_is_not_slower_than_itself():
    (seed,) = _seeds("C/median")
    same = measure_programs(seed.program, seed.program, "C", scaled_input(seed.scale), CostRule())
    kept, evidence = runtime_verdict(*same, CostRule())
    assert not kept and evidence["reason"] == "not measurably slower"


def test_a_javascript_set_scanned_as_an_array_is_kept_slower(verified):
    (pair,) = _kept(verified, RUNTIME, "javascript_set_to_array")
    assert "seen.includes(value)" in pair["rejected"] and pair["evidence"]["p_value"] < 0.01


def test_a_widened_c_table_is_kept_larger_on_every_round_and_widened_strings_fail_their_cases(verified):
    (pair,) = _kept(verified, MEMORY, "c_widened_array")
    evidence = pair["evidence"]
    assert "static long long seen[1000000]" in pair["rejected"] and evidence["ratio"] >= 1.5
    assert min(evidence["variant_peak_bytes"]) >= 1.5 * max(evidence["reference_peak_bytes"])
    assert verified.stats["Memory_Efficiency:tried:c_widened_array"] == 3  # greet's char buffers are never kept
    assert verified.stats["Memory_Efficiency:kept:c_widened_array"] == 1


def test_functional_mutants_are_kept_only_when_a_case_fails(verified):
    kept = [p for p in verified.pairs if p["aspect"] == FUNCTIONAL]
    assert kept and all(p["subset"].startswith("MUTANT_") for p in kept)
    assert all(p["evidence"]["failing_case"]["error"] for p in kept)
    assert sum(v for k, v in verified.stats.items() if ":rejected_equivalent:" in k) > 0  # e.g. `<` -> `<=` on a guard


def test_security_rewrites_are_flagged_by_clang_tidy_and_eslint_only_on_the_insecure_side(verified):
    found = {p["evidence"]["operator"]: p for p in verified.pairs if p["aspect"] == SECURITY}
    assert set(found) == {"c_strncpy_to_strcpy", "c_format_from_input", "javascript_json_parse_to_eval"}
    assert found["c_strncpy_to_strcpy"]["evidence"]["analyzer_new"] == ["clang-analyzer-security.insecureAPI.strcpy"]
    assert "no-eval" in found["javascript_json_parse_to_eval"]["evidence"]["analyzer_new"]
    for pair in found.values():
        secure, insecure = analyse("security", [pair["chosen"], pair["rejected"]], [pair["language"]] * 2)
        assert secure.value == 0.0 and insecure.value < 0


def test_readability_rewrites_add_lint_findings(verified):
    codes = {c for p in verified.pairs if p["aspect"] == READABILITY for c in p["evidence"]["lint_new_codes"]}
    assert {"readability-braces-around-statements", "no-var"} <= codes


def test_operators_edit_only_their_site_and_refuse_what_they_cannot_preserve():
    js = "const s = new Set();\ns.add(1);\nconsole.log(s.has(1), s.size);\n"
    assert list(set_to_array(parse(js, "JavaScript"))) == []  # `.size` is not an array's
    c = "int f(int x) {\n    if (x) {\n        return 1;\n    } else {\n        return 2;\n    }\n}\n"
    assert list(braces_removed(parse(c, "C"))) == []  # an if with an else keeps its braces
    (seed,) = _seeds("C/digit_histogram")
    (variant,) = text_variants(seed.program, "C", RUNTIME)
    assert variant.code.replace("i < strlen(text)", "i < length") == seed.program


def test_languages_are_detected_and_a_missing_toolchain_is_reported_and_skipped(tmp_path, monkeypatch):
    from themis_rm.sandbox import toolchains

    assert set(languages_asked(MutateConfig(output=tmp_path, languages=("all",)))) == {"Python", "C", "JavaScript"}
    real = toolchains.available()
    missing = toolchains.Availability("C", False, "gcc not on PATH")
    monkeypatch.setattr(toolchains, "available", lambda: {**real, "C": missing})
    stats = run_mutation(MutateConfig(output=tmp_path, criteria=("readability",), languages=("C",)))
    assert stats["languages"] == {"C": "unavailable (gcc not on PATH)"} and stats["train_pairs"] == 0


def test_shared_security_pairs_are_kept_only_when_the_analyser_flags_the_rejected_side(tmp_path):
    rows = [
        ("kept", "import ast\n\n\ndef f(s):\n    return ast.literal_eval(s)\n", "def f(s):\n    return eval(s)\n"),
        ("clean", "def f(s):\n    return int(s)\n", "def f(s):\n    return float(s)\n"),
        ("both", "def f(s):\n    return eval(s)\n", "import os\n\n\ndef f(s):\n    return os.system(s)\n"),
    ]
    data = tmp_path / "pairs.jsonl"
    lines = [
        {"id": i, "prompt": "p", "chosen": c, "rejected": r, "aspect": "Security_Hardness", "language": "Python"}
        for i, c, r in rows
    ]
    lines.append(
        {"id": "go", "prompt": "p", "chosen": "x", "rejected": "y", "aspect": "Security_Hardness", "language": "Go"}
    )
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = verify_security_pairs(data)
    (pair,) = result.pairs
    assert pair["id"] == "ORACLE_Security_Hardness_kept" and pair["evidence"]["analyzer_new"] == ["B307"]
    assert result.stats["Security_Hardness:rejected_not_flagged:shared_python"] == 2
    assert result.stats["Security_Hardness:shared_not_readable"] == 1


@pytest.mark.real_data
def test_the_shared_safecoder_pairs_yield_verified_real_pairs(shared_dir, eslint_analyzer):
    result = verify_security_pairs(shared_dir / "data" / "pairs" / "safecoder_security.jsonl")
    python = [p for p in result.pairs if p["language"] == "Python"]
    assert len(python) >= 20 and all(p["subset"] == "ORACLE_VERIFIED_SAFECODER_SEC" for p in python)
    assert result.stats["Security_Hardness:tried:shared_c"] > 0  # read, though fragments do not compile alone


def test_mutate_runs_the_c_and_javascript_oracles_and_reports_the_languages(tmp_path, eslint_analyzer):
    out = tmp_path / "out"
    args = ["data", "mutate", "-o", str(out), "--criteria", "security", "--languages", "C,JavaScript"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "C: gcc" in result.output and "JavaScript: v" in result.output
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["languages"]) == {"C", "JavaScript"}
    pairs = [json.loads(line) for name in ("train", "heldout") for line in (out / f"{name}_pairs.jsonl").open()]
    assert {p["language"] for p in pairs} == {"C", "JavaScript"} and {p["aspect"] for p in pairs} == {SECURITY}


def test_the_datatrove_executor_gives_the_inline_runs_pairs_and_counts(tmp_path):
    common = ["data", "mutate", "--limit", "3", "--criteria", "readability"]
    for name, extra in (("inline", []), ("datatrove", ["--executor", "datatrove", "--tasks", "2"])):
        result = CliRunner().invoke(app, [*common, "-o", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    inline, datatrove = (json.loads((tmp_path / n / "stats.json").read_text()) for n in ("inline", "datatrove"))
    assert inline == datatrove and inline["train_pairs"] + inline["heldout_pairs"] > 0
    ids = {
        n: sorted(json.loads(line)["id"] for line in (tmp_path / n / "train_pairs.jsonl").open())
        for n in ("inline", "datatrove")
    }
    assert ids["inline"] == ids["datatrove"]
    assert (tmp_path / "datatrove" / "datatrove" / "logs" / "stats").is_dir()
