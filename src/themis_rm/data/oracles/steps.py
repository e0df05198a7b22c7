"""The oracles as datatrove steps, so the same verification runs on datatrove's local, Slurm or Ray executor.

``problems (sharded by rank) -> OracleStep -> JsonlWriter``: each task reads its share of the problems, runs the
per-problem oracles (runtime, memory, readability) on them and writes the kept pairs to
``<output>/pairs/<rank>.jsonl`` in the CodeRewardBench schema with their evidence; rank 0 also verifies the
security seed tasks. Oracle outcomes become datatrove stats (``kept``, ``rejected_tests_fail``, ... per
criterion and operator), merged by :func:`run_oracle_pipeline` into one summary. A rerun skips finished tasks.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

from themis_rm.data.base import Document, PipelineStep
from themis_rm.data.bugs import Problem, load_problems
from themis_rm.data.oracles.verify import SECURITY, OracleConfig, tag_conflicts, verify_problem, verify_security_tasks


class ProblemReader(PipelineStep):
    """Problems (the installed HumanEval, or a HumanEval-format JSONL), dealt round-robin over the tasks."""

    name = "problems"
    type = "📖 - READER"

    def __init__(self, source: str = "humaneval", limit: int | None = None) -> None:
        super().__init__()
        self.source, self.limit = source, limit

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        for index, problem in enumerate(load_problems(self.source)[: self.limit]):
            if index % world_size == rank:
                self.stat_update("problems")
                yield Document(text=problem.solution, id=problem.task_id, metadata=dataclasses.asdict(problem))


class OracleStep(PipelineStep):
    """Verified pairs for each problem document (one output document per pair); rank 0 adds the seed tasks."""

    name = "oracles"
    type = "🔬 - ORACLE"

    def __init__(self, criteria: tuple[str, ...], config: OracleConfig | None = None) -> None:
        super().__init__()
        self.criteria, self.config = criteria, config or OracleConfig()

    def run(self, data, rank: int = 0, world_size: int = 1):
        per_problem = [c for c in self.criteria if c != SECURITY]
        for document in data:
            result = verify_problem(Problem(**document.metadata), per_problem, self.config)
            yield from self._emit(result)
        if SECURITY in self.criteria and rank == 0:
            from themis_rm.data.oracles.security import TASKS

            yield from self._emit(verify_security_tasks(TASKS, self.config))

    def _emit(self, result):
        for key, count in result.stats.items():
            self.stat_update(key, value=count)
        for pair in tag_conflicts(result.pairs):
            yield Document(text=pair["rejected"], id=pair["id"], metadata=pair)


def _pair_row(_writer, document) -> dict:
    return document.metadata


def oracle_steps(output: str, criteria: tuple[str, ...], *, source: str = "humaneval", limit: int | None = None,
                 config: OracleConfig | None = None) -> list:  # fmt: skip
    from datatrove.pipeline.writers import JsonlWriter

    writer = JsonlWriter(f"{output}/pairs", output_filename="${rank}.jsonl", compression=None, adapter=_pair_row)
    return [ProblemReader(source, limit), OracleStep(criteria, config), writer]


def run_oracle_pipeline(
    output: str | Path,
    criteria: tuple[str, ...],
    *,
    tasks: int = 1,
    workers: int = 1,
    source: str = "humaneval",
    limit: int | None = None,
    config: OracleConfig | None = None,
) -> dict:
    """Run the oracles with datatrove's local executor; returns the merged stats (``kept`` etc. per key)."""
    from datatrove.executor import LocalPipelineExecutor

    output = Path(output)
    executor = LocalPipelineExecutor(
        oracle_steps(str(output), criteria, source=source, limit=limit, config=config),
        tasks=tasks,
        workers=workers,
        logging_dir=str(output / "logs"),
    )
    executor.run()
    totals: Counter = Counter()
    for path in sorted((output / "logs" / "stats").glob("*.json")):
        for step in json.loads(path.read_text()):
            for key, value in step.get("stats", {}).items():
                name = step["name"].split(": ", 1)[-1]  # datatrove prefixes the step's type
                totals[f"{name}/{key}"] += value["total"] if isinstance(value, dict) else value
    return dict(sorted(totals.items()))
