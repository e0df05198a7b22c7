"""Synthetic preference tasks that a tiny model can only solve by reading the right tokens.

* :func:`language_pairs`: the prompt asks for Python or JavaScript; the chosen answer is in that language. Solving
  it needs prompt and response together (the same two answers swap roles between prompts).
* :func:`operator_pairs`: small, fast pairs for the loop's mechanics (a one-token difference; slow to learn).
* :func:`criteria_pairs`: two implementations, one fast (a set lookup) and one readable (a docstring). Under
  Runtime_Efficiency the fast one is chosen, under Readability_Maintainability the readable one: solving it needs
  the system prompt, which the trainer samples (none / own criterion / all five).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OPERATIONS = {"add": "+", "subtract": "-"}
NAMES = ["alpha", "beta", "gamma", "delta", "value", "count", "total", "item", "left", "right", "width", "size"]
TASKS = ["dedupe the ids", "find shared users", "filter the records", "match the tags", "check the names"]

SHORT_PACK_TOML = """
base = "You rate code."

[[criteria]]
key = "Functional_Correctness"
title = "Functional Correctness"
text = "Is it correct?"

[[criteria]]
key = "Runtime_Efficiency"
title = "Runtime Efficiency"
text = "Is it fast?"

[[criteria]]
key = "Memory_Efficiency"
title = "Memory Efficiency"
text = "Is it lean?"

[[criteria]]
key = "Security_Hardness"
title = "Security Hardness"
text = "Is it safe?"

[[criteria]]
key = "Readability_Maintainability"
title = "Readability and Maintainability"
text = "Is it clear?"
"""


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _python(fn: str, a: str, b: str, op: str) -> str:
    return f"def {fn}({a}, {b}):\n    return {a} {op} {b}"


def _javascript(fn: str, a: str, b: str, op: str) -> str:
    return f"function {fn}({a}, {b}) {{\n  return {a} {op} {b};\n}}"


def language_pairs(n: int, seed: int) -> list[dict]:
    """The prompt asks for Python or JavaScript; the chosen answer is in that language, the rejected in the other.

    The same two answers swap roles between the two kinds of prompt, so only reading prompt and response
    together solves it.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.sample(NAMES, 2)
        fn = rng.choice(["f", "g", "h", "calc", "run"])
        op = rng.choice(sorted(OPERATIONS.values()))
        task = f"{rng.choice(sorted(OPERATIONS))} {a} and {b}"
        python, javascript = _python(fn, a, b, op), _javascript(fn, a, b, op)
        wants_python = rng.random() < 0.5
        rows.append(
            {
                "id": f"lang-{seed}-{i}",
                "input": f"In {'Python' if wants_python else 'JavaScript'}, write {fn} to {task}.",
                "chosen": python if wants_python else javascript,
                "rejected": javascript if wants_python else python,
                "aspect": "Functional_Correctness",
                "language": "Python" if wants_python else "JavaScript",
            }
        )
    return rows


def operator_pairs(n: int, seed: int) -> list[dict]:
    """The prompt says add or subtract; the chosen code applies it, the rejected code the other (a 1-token change)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        op, wrong = rng.sample(sorted(OPERATIONS), 2)
        a, b = rng.sample(NAMES, 2)
        fn = rng.choice(["f", "g", "h", "calc", "run"])
        rows.append(
            {
                "id": f"op-{seed}-{i}",
                "input": f"Write {fn}({a}, {b}) that should {op} {a} and {b}.",
                "chosen": _python(fn, a, b, OPERATIONS[op]),
                "rejected": _python(fn, a, b, OPERATIONS[wrong]),
                "aspect": "Functional_Correctness",
            }
        )
    return rows


def _fast_and_readable(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(NAMES, 2)
    fast = f"def pick({a}, {b}):\n    seen = set({b})\n    return [x for x in {a} if x in seen]"
    readable = f'def pick({a}, {b}):\n    """Keep the {a} found in {b}."""\n    return [x for x in {a} if x in {b}]'
    return fast, readable


def criteria_pairs(n: int, seed: int) -> list[dict]:
    """Half Runtime_Efficiency (fast wins), half Readability_Maintainability (readable wins), no system prompt."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fast, readable = _fast_and_readable(rng)
        runtime = i % 2 == 0
        rows.append(
            {
                "id": f"crit-{seed}-{i}",
                "input": f"Write pick to {rng.choice(TASKS)}.",
                "chosen": fast if runtime else readable,
                "rejected": readable if runtime else fast,
                "aspect": "Runtime_Efficiency" if runtime else "Readability_Maintainability",
            }
        )
    return rows


def held_out_criteria_pairs(n: int, seed: int, aspect: str) -> list[dict]:
    """Pairs for one aspect: the response that aspect prefers is chosen (evaluated under its eval prompt)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fast, readable = _fast_and_readable(rng)
        runtime = aspect == "Runtime_Efficiency"
        rows.append(
            {
                "id": f"held-{aspect}-{i}",
                "input": f"Write pick to {rng.choice(TASKS)}.",
                "chosen": fast if runtime else readable,
                "rejected": readable if runtime else fast,
                "aspect": aspect,
            }
        )
    return rows
