"""What a composite reward scores: a group of completions for one prompt (a GRPO group, a rerank list), with the
tests that decide correctness.

One input row (JSONL/JSON/Parquet/CSV; the rerank schema plus tests)::

    {"id": "q1", "prompt": "Write add(a, b).", "completions": ["```python\\ndef add(a, b): ...```", "..."],
     "language": "Python", "entry_point": "add", "tests": ["assert candidate(1, 2) == 3"],
     "test_preamble": "import math", "reference": "def add(a, b):\\n    return a + b\\n"}

Tests come as Python statements against ``candidate`` (``tests``, a list; HumanEval's ``test`` string with its
``check(candidate)`` works too) for Python and JavaScript programs, or as input/output cases for any language
(``io_cases``: ``[{"input": ..., "output": ...}]``, or APPS/TACO's ``input_output``: ``{"inputs": [...],
"outputs": [...]}``). ``prompt`` may be ``description`` (the rerank field). Code is taken from the last fenced block
of a completion when it has one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from themis_rm.pairs import LoadedRows, Prompt, RowValidator, load_rows
from themis_rm.sandbox.stdio import IOCase

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class RewardGroup:
    """One prompt, its completions, and how to test them."""

    id: str
    prompt: Prompt
    completions: list[str]
    language: str = "Python"
    entry_point: str | None = None
    tests: list[str] | None = None
    test_preamble: str = ""
    io_cases: list[IOCase] | None = None
    reference: str | None = None

    @property
    def testable(self) -> bool:
        return bool(self.tests) or bool(self.io_cases)

    @property
    def test_style(self) -> str | None:
        """``calls`` (Python statements), ``stdio`` (input/output cases) or None (no tests)."""
        return "calls" if self.tests else "stdio" if self.io_cases else None

    def programs(self) -> list[str]:
        return [extract_program(completion) for completion in self.completions]


def extract_program(completion: str) -> str:
    """The code of a completion: its last fenced block when it has one (what RL code rewards read), else all."""
    blocks = _FENCE.findall(completion)
    return blocks[-1][1] if blocks else completion


def parse_group(v: RowValidator) -> RewardGroup:
    record = v.record
    completions = record.get("completions")
    if not isinstance(completions, list) or not completions or not all(isinstance(c, str) for c in completions):
        raise v.fail("completions", "must be a non-empty list of strings")
    tests, preamble = _tests(v)
    io_cases = _io_cases(v)
    if tests and io_cases:
        raise v.fail("tests", "give tests or input/output cases, not both")
    entry_point = v.text("entry_point", required=bool(tests))
    return RewardGroup(
        id=v.row_id("id"),
        prompt=v.prompt(v.column("prompt", "description")),
        completions=list(completions),
        language=v.text("language", required=False) or "Python",
        entry_point=entry_point,
        tests=tests,
        test_preamble=preamble,
        io_cases=io_cases,
        reference=v.text("reference", required=False),
    )


def _tests(v: RowValidator) -> tuple[list[str] | None, str]:
    preamble = v.text("test_preamble", required=False) or ""
    tests = v.record.get("tests")
    if tests is None and isinstance(v.record.get("test"), str):  # HumanEval: `def check(candidate): ...`
        return ["check(candidate)"], preamble + "\n" + v.record["test"]
    if tests is None:
        return None, preamble
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) and t.strip() for t in tests):
        raise v.fail("tests", "must be a non-empty list of test statements (strings)")
    return list(tests), preamble


def _io_cases(v: RowValidator) -> list[IOCase] | None:
    cases = v.record.get("io_cases")
    if cases is None and v.record.get("input_output") is not None:
        return _apps_cases(v)
    if cases is None:
        return None
    if not isinstance(cases, list) or not cases:
        raise v.fail("io_cases", "must be a non-empty list of {input, output} objects")
    out = []
    for index, case in enumerate(cases):
        if not isinstance(case, dict):
            raise v.fail("io_cases", f"case {index} must be an object with string input and output")
        try:
            out.append(IOCase.of(case))
        except ValueError as error:
            raise v.fail("io_cases", f"case {index}: {error}") from None
    return out


def _apps_cases(v: RowValidator) -> list[IOCase]:
    value = v.record["input_output"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise v.fail("input_output", "is not valid JSON") from None
    inputs, outputs = (value.get("inputs"), value.get("outputs")) if isinstance(value, dict) else (None, None)
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs) or not inputs:
        raise v.fail("input_output", "must hold equal-length, non-empty 'inputs' and 'outputs' lists")
    if not all(isinstance(x, str) for x in inputs + outputs):
        raise v.fail("input_output", "inputs and outputs must be strings (stdin/stdout)")
    return [IOCase(i, o) for i, o in zip(inputs, outputs, strict=True)]


def load_groups(source: str | Path, *, skip_invalid: bool = False, **read_options) -> LoadedRows:
    """Read and validate groups; a bad row names the file, the row and the field."""
    return load_rows(source, parse_group, skip_invalid, **read_options)
