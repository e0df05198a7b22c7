"""``themis reward``: the CLI end to end on a file of groups, resumable, with a summary beside the output."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from themis_rm.cli import app

SPEC = """\
components:
  - {kind: tests, weight: 2.0, gate: {below: 1.0, floor: -1.0}}
  - {kind: static, analyzer: ruff, weight: 0.1, normalize: rank}
execution: {timeout_s: 3, workers: 2}
"""

GROUPS = [
    {
        "id": "add",
        "prompt": "Write add(a, b).",
        "completions": ["def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"],
        "entry_point": "add",
        "tests": ["assert candidate(1, 2) == 3"],
    },
    {
        "id": "sum",
        "description": "Read two numbers, print their sum.",
        "completions": ["a, b = map(int, input().split())\nprint(a + b)\n", "print(1)\n"],
        "input_output": json.dumps({"inputs": ["1 2\n", "2 2\n"], "outputs": ["3\n", "4\n"]}),
    },
    {"id": "talk", "prompt": "Say hi.", "completions": ["print('hi')\n", "x=1\n"]},
]


def _files(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    data = tmp_path / "groups.jsonl"
    data.write_text("".join(json.dumps(g) + "\n" for g in GROUPS))
    return spec, data, tmp_path / "out" / "rewards.jsonl"


def _run(*args):
    return CliRunner().invoke(app, ["reward", *map(str, args)])


def test_rewards_every_group_and_resumes_after_a_crash(tmp_path):
    spec, data, out = _files(tmp_path)
    first = _run("--spec", spec, "-i", data, "-o", out, "--limit", "1")
    assert first.exit_code == 0, first.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["add"]
    out.write_text(out.read_text() + '{"id": "sum", "rewa')  # a crash mid-line
    second = _run("--spec", spec, "-i", data, "-o", out, "--batch-groups", "1")
    assert second.exit_code == 0, second.output
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert list(records) == ["add", "sum", "talk"]
    assert records["add"]["rewards"][1] == -1.0 and records["add"]["gated_by"] == [None, "tests"]
    assert records["sum"]["raw"]["tests"] == [1.0, 0.0] and records["talk"]["raw"]["tests"] == [None, None]
    assert records["talk"]["components"]["static:ruff"] == [0.5, 0.5]  # both clean: equal ranks
    run = json.loads(out.with_name("rewards.jsonl.run.json").read_text())
    assert run["groups_scored"] == 2 and run["groups_resumed"] == 1 and run["executions"] == 2
    assert run["spec"]["components"][0]["gate"] == {"below": 1.0, "floor": -1.0}
    assert "sandbox isolation:" in run["sandbox_isolation"] and "Python" in run["toolchains"]
    assert run["static_analyzers"] == {"ruff": {"Python": "ruff"}}
    assert "rewarded 2 groups" in second.output and "1 candidates gated" in second.output


def test_a_bad_spec_or_row_fails_before_anything_runs(tmp_path):
    spec, data, out = _files(tmp_path)
    spec.write_text("components:\n  - {kind: rm, criteria: functional}\n  - {kind: static}\n")
    result = _run("--spec", spec, "-i", data, "-o", out)
    assert result.exit_code == 2 and not out.exists()
    assert "rm.model is required" in result.output and "needs 'analyzer'" in result.output
    spec.write_text(SPEC)
    data.write_text(json.dumps({**GROUPS[0], "tests": "assert candidate(1, 2) == 3"}) + "\n")
    result = _run("--spec", spec, "-i", data, "-o", out)
    assert result.exit_code == 2 and "groups.jsonl:1" in result.output
    assert "field 'tests' must be a non-empty list of test statements" in result.output
    result = _run("--spec", spec, "-i", data, "-o", data)
    assert result.exit_code == 2 and not out.exists()
