"""The composite reward on real components: the sandbox, ruff, bandit, radon, and a tiny reward model."""

from __future__ import annotations

import pytest

from themis_rm.errors import ThemisInputError
from themis_rm.reward.composite import CompositeReward
from themis_rm.reward.groups import RewardGroup, extract_program
from themis_rm.reward.normalize import normalize
from themis_rm.reward.spec import load_reward_spec
from themis_rm.sandbox.stdio import IOCase

ADD_TESTS = ["assert candidate(1, 2) == 3", "assert candidate(-1, 1) == 0"]
RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"


def _spec(*components, **sections):
    return load_reward_spec({"components": list(components), "execution": {"timeout_s": 3, "workers": 2}, **sections})


def _group(completions, **fields):
    return RewardGroup("add", "Write add(a, b).", completions, entry_point="add", tests=ADD_TESTS, **fields)


def test_tests_gate_the_reward_and_keep_the_failure_as_evidence():
    spec = _spec({"kind": "tests", "weight": 2.0, "gate": {"below": 1.0, "floor": -1.0}})
    (result,) = CompositeReward(spec).score([_group([f"```python\n{RIGHT}```", WRONG])])
    right, wrong = result.candidates
    assert right.reward == 2.0 and right.raw["tests"] == 1.0 and right.gated_by is None
    assert wrong.reward == -1.0 and wrong.gated_by == "tests" and wrong.raw["tests"] == 0.0
    assert wrong.evidence["tests"]["first_failure"]["test"] == ADD_TESTS[0]
    assert result.executions == 2 and result.executions_saved == 0


def test_static_analysers_find_real_issues_and_skip_other_languages(eslint_analyzer):
    spec = _spec(
        {"kind": "static", "analyzer": "ruff"},
        {"kind": "static", "analyzer": "bandit"},
        {"kind": "static", "analyzer": "complexity"},
        {"kind": "static", "analyzer": "maintainability"},
    )
    risky = "import os\n\n\ndef add(a, b):\n    l = eval(f'{a}+{b}')\n    return l\n"
    branchy = "def add(a, b):\n" + "".join(f"    if a == {i}:\n        return {i} + b\n" for i in range(6)) + RIGHT[15:]
    python = RewardGroup("py", "p", [RIGHT, risky, branchy])
    js = RewardGroup("js", "p", ["function add(a, b) { return a + b; }"], language="JavaScript")
    clean, bad, complex_ = CompositeReward(spec).score([python, js])[0].candidates
    assert clean.raw["static:ruff"] == 0.0 and clean.raw["static:bandit"] == 0.0
    assert {f["code"] for f in bad.evidence["static:ruff"]["findings"]} >= {"F401", "E741"}
    assert bad.raw["static:bandit"] == -2.0 and bad.evidence["static:bandit"]["findings"][0]["code"] == "B307"
    assert complex_.raw["static:complexity"] < clean.raw["static:complexity"] == -1.0
    assert complex_.raw["static:maintainability"] < clean.raw["static:maintainability"] <= 100
    (other,) = CompositeReward(spec).score([js])[0].candidates
    assert other.raw["static:complexity"] == -1.0  # ESLint's complexity rule reads it
    assert all(other.raw[f"static:{name}"] is None for name in ("ruff", "bandit", "maintainability"))
    assert other.evidence["static:bandit"]["note"] == "bandit reads Python, not JavaScript"


def test_measure_ranks_cost_against_the_reference_in_both_directions():
    n = 2_000_000
    tests = [f"assert candidate({n}) == {n * (n - 1) // 2}"]
    reference = "def total(n):\n    return n * (n - 1) // 2\n"
    looped = "def total(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
    listed = "def total(n):\n    return sum([i for i in range(n)])\n"
    group = RewardGroup("sum", "p", [reference, looped, listed], entry_point="total", tests=tests, reference=reference)
    spec = _spec({"kind": "measure", "metric": "cpu_time"}, {"kind": "measure", "metric": "peak_memory"})
    (result,) = CompositeReward(spec).score([group])
    fast, slow, big = result.candidates
    assert slow.raw["measure:cpu_time"] < -0.5 < fast.raw["measure:cpu_time"]  # log(reference / candidate)
    assert big.raw["measure:peak_memory"] < -0.5 < fast.raw["measure:peak_memory"]
    assert slow.evidence["measure:cpu_time"]["cpu_s"] > slow.evidence["measure:cpu_time"]["reference_cpu_s"]
    assert result.executions == 4  # three candidates and the reference


def test_input_output_groups_run_in_compiled_languages_and_are_measured():
    spec = _spec({"kind": "tests", "gate": {"below": 1.0, "floor": -1.0}}, {"kind": "measure", "metric": "cpu_time"})
    program = '#include <stdio.h>\nint main(void) { long a, b; scanf("%ld %ld", &a, &b); printf("%ld\\n", a + b); }\n'
    group = RewardGroup("c", "p", [program, "int main(void) { return 0; }\n"], language="C")
    group = RewardGroup(**{**group.__dict__, "io_cases": [IOCase("1 2\n", "3\n"), IOCase("5 5\n", "10\n")]})
    right, wrong = CompositeReward(spec).score([group])[0].candidates
    assert right.raw["tests"] == 1.0 and right.raw["measure:cpu_time"] <= 0
    assert wrong.reward == -1.0 and wrong.evidence["tests"]["first_failure"]["error"] == "wrong output"


HOSTILE = {
    "hangs": "import time\ndef add(a, b):\n    time.sleep(60)\n",
    "fork_bomb": "import os\ndef add(a, b):\n    while True:\n        os.fork()\n",
    "memory": "def add(a, b):\n    x = []\n    while True:\n        x.append(bytearray(1 << 26))\n",
    "writes_outside": "def add(a, b):\n    open('/tmp/themis-reward-escape', 'w').write('x')\n    return a + b\n",
    "socket": "import socket\ndef add(a, b):\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n"
    "    return a + b\n",
}


def test_hostile_candidates_are_contained_and_scored_with_the_floor(tmp_path):
    spec = _spec({"kind": "tests", "gate": {"below": 1.0, "floor": -5.0}}, {"kind": "static", "analyzer": "ruff"})
    (result,) = CompositeReward(spec).score([_group(list(HOSTILE.values()))])
    for name, candidate in zip(HOSTILE, result.candidates, strict=True):
        assert candidate.reward == -5.0 and candidate.gated_by == "tests", name
        tests = candidate.evidence["tests"]
        assert tests["failed"] >= 1 and (tests.get("error") or tests.get("first_failure")), name
    from pathlib import Path

    assert not Path("/tmp/themis-reward-escape").exists()


def test_the_cascade_executes_only_the_rm_s_top_k_and_counts_what_it_saved(tiny_model_dir):
    components = [{"kind": "rm", "criteria": "none"}, {"kind": "tests"}]
    spec = _spec(*components, rm={"model": str(tiny_model_dir), "device": "cpu"}, cascade={"top_k": 1})
    reward = CompositeReward(spec)
    groups = [_group([RIGHT, WRONG, RIGHT + "\n# again\n"]), _group([WRONG, RIGHT])]
    groups[1] = RewardGroup(**{**groups[1].__dict__, "id": "add-2"})
    results = reward.score(groups)
    for result in results:
        executed = [c for c in result.candidates if "note" not in c.evidence["tests"]]
        skipped = [c for c in result.candidates if c.evidence["tests"].get("note") == "not executed (cascade)"]
        assert len(executed) == 1 and result.executions == 1 == len(result.candidates) - result.executions_saved
        best = max(result.candidates, key=lambda c: c.raw["rm:none"])
        assert best in executed and all(c.raw["tests"] == 0.0 for c in skipped)
    wide = CompositeReward(_spec(*components, rm=spec.rm.__dict__, cascade={"top_k": 1, "margin": 1e9}))
    assert all(r.executions_saved == 0 for r in wide.score(groups))  # a huge margin executes everything


def test_start_up_names_what_cannot_run_before_anything_runs():
    reward = CompositeReward(_spec({"kind": "tests"}))
    cobol = RewardGroup("q", "p", ["x"], language="Cobol", io_cases=[IOCase("", "")])
    c_calls = RewardGroup("r", "p", ["int add(int a, int b);"], language="C", entry_point="add", tests=ADD_TESTS)
    with pytest.raises(ThemisInputError) as raised:
        reward.check([cobol, c_calls])
    assert "no toolchain for language 'Cobol' (groups q)" in str(raised.value)
    assert "test statements run against Python, JavaScript programs, not C (groups r)" in str(raised.value)


def test_normalisations_within_a_group():
    assert normalize([1.0, 2.0, 3.0, None], "group_z") == pytest.approx([-1.2247449, 0.0, 1.2247449, None])
    assert normalize([2.0, 2.0], "group_z") == [0.0, 0.0]
    assert normalize([3.0, 1.0, 3.0, None], "rank") == [0.75, 0.0, 0.75, None]
    assert normalize([4.0], "rank") == [0.5]
    assert normalize([None, 1.5], "none") == [None, 1.5]


def test_code_is_read_from_the_last_fenced_block():
    text = "Here:\n```python\nold = 1\n```\nBetter:\n```py\ndef f():\n    return 2\n```\nDone."
    assert extract_program(text) == "def f():\n    return 2\n"
    assert extract_program("def f(): pass") == "def f(): pass"
