"""The oracles on datatrove's local executor: problems sharded over tasks, pairs and stats merged."""

from __future__ import annotations

import json

from themis_rm.data.oracles.steps import run_oracle_pipeline
from themis_rm.data.oracles.verify import READABILITY, SECURITY

PROBLEMS = [
    {
        "task_id": f"T/{i}",
        "prompt": "def f(xs):\n",
        "canonical_solution": (
            f"    total = 0\n    for value in xs:\n        total += value * {i + 1}\n    return total\n"
        ),
        "entry_point": "f",
        "test": f"def check(candidate):\n    assert candidate([1, 2]) == {3 * (i + 1)}\n",
    }
    for i in range(3)
]


def test_two_tasks_share_the_problems_and_write_every_pair_once(tmp_path):
    source = tmp_path / "problems.jsonl"
    source.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    stats = run_oracle_pipeline(tmp_path / "out", (READABILITY, SECURITY), tasks=2, workers=2, source=str(source))
    pairs = [json.loads(line) for path in sorted((tmp_path / "out" / "pairs").glob("*.jsonl")) for line in path.open()]
    tasks = {pair["evidence"]["task_id"] for pair in pairs if pair["aspect"] == READABILITY}
    assert tasks == {"T/0", "T/1", "T/2"} and len({pair["id"] for pair in pairs}) == len(pairs)
    assert sum(pair["aspect"] == SECURITY for pair in pairs) >= 5  # the seed tasks, on rank 0 only
    assert stats["problems/problems"] == 3
    kept = sum(v for k, v in stats.items() if k.startswith("oracles/") and ":kept:" in k)
    assert kept == len(pairs)
