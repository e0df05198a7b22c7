"""The pipeline as datatrove phases, handed to the chosen executor, and the kept/dropped summary.

Three phases, each a plain list of steps (so the same lists run on datatrove's local, Slurm or Ray executor):

1. ``mine`` (N tasks): mine -> message rules -> allowlist/token/AST filters -> aspect labels -> dedup signatures ->
   ``work/records/<rank>.jsonl``.
2. ``dedup`` (1 task): duplicate clusters over every task's signatures -> ``work/dedup/duplicates.jsonl``.
3. ``assemble`` (N tasks): records -> dedup filter -> LLM stages -> decontamination -> pairs -> chat-length
   limit -> ``pairs/{train,validation}/<rank>.jsonl``.

Resumable by construction: each phase logs to ``logs/<phase>``, a finished task leaves a completion marker and its
stats (datatrove), and a rerun skips finished tasks; LLM answers are cached on disk. The summary merges the
per-task stats files, so it is complete after a resume too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from themis_rm.data.aspects import AspectLabeler
from themis_rm.data.assemble import ChatBudget, PairBuilder, pair_writer
from themis_rm.data.config import PipelineConfig
from themis_rm.data.decontam import DecontaminationFilter
from themis_rm.data.dedup import DedupClusters, DedupFilter, DedupSignatures
from themis_rm.data.filters import CommitMessageFilter, build_filters
from themis_rm.data.git import is_repository
from themis_rm.data.llm_steps import build_llm_steps
from themis_rm.data.sources import ExportReader, GitRepoReader, record_reader, record_writer
from themis_rm.errors import ThemisInputError

logger = logging.getLogger(__name__)

PhaseCallback = Callable[[str, int, int], None]


@dataclass
class Phase:
    """A named list of steps run with ``tasks`` tasks."""

    name: str
    steps: list
    tasks: int


def build_pipeline(config: PipelineConfig) -> list[Phase]:
    """The phases of ``config``, in order."""
    out = Path(config.output_dir)
    work = out / "work"
    tasks = config.executor.tasks
    check_sources(config)
    dedup = config.dedup.exact or config.dedup.near
    mine = mine_steps(config) + build_filters(config.filters)
    mine.append(AspectLabeler(config.aspects))
    if dedup:
        mine.append(DedupSignatures(str(work / "dedup"), config.dedup))
    mine.append(record_writer(str(work / "records")))
    phases = [Phase("mine", mine, tasks)]
    if dedup:
        phases.append(Phase("dedup", [DedupClusters(str(work / "dedup"), config.dedup)], 1))
    assemble: list = [record_reader(str(work / "records"))]
    if dedup:
        assemble.append(DedupFilter(str(work / "dedup")))
    if config.llm.any_enabled:
        config.llm.cache_dir = config.llm.cache_dir or str(out / "llm_cache")
        assemble += build_llm_steps(config.llm)
    if config.assemble.decontam.benchmarks:
        assemble.append(DecontaminationFilter(config.assemble.decontam))
    assemble.append(PairBuilder(config.assemble))
    if config.assemble.tokenizer:
        budget = config.assemble
        assemble.append(ChatBudget(budget.tokenizer, budget.max_tokens, budget.over_budget))
    assemble.append(pair_writer(str(out / "pairs")))
    phases.append(Phase("assemble", assemble, tasks))
    return phases


def mine_steps(config: PipelineConfig) -> list:
    """Readers of every configured source, then the commit-message rules: the one mining path of ``data mine`` and
    ``data run``, so both keep exactly the same commits and count the same ``dropped_message_*`` reasons."""
    steps: list = []
    if config.mine.repos or config.mine.repos_file:
        steps.append(GitRepoReader(config.mine))
    if config.mine.bigquery:
        steps.append(ExportReader(config.mine))
    return [*steps, CommitMessageFilter(config.filters.message)]


def check_sources(config: PipelineConfig) -> None:
    """Fail before any work when a source is missing: every problem in one error."""
    specs = config.mine.repo_specs()
    if not specs and not config.mine.bigquery:
        raise ThemisInputError("mine: no sources; give mine.repos, mine.repos_file or mine.bigquery")
    problems = [f"mine.repos: {s.path} is not a git repository" for s in specs if not is_repository(s.path)]
    problems += [f"mine.bigquery: {p} does not exist" for p in config.mine.bigquery if not Path(p).is_file()]
    if config.mine.clones_dir and not Path(config.mine.clones_dir).is_dir():
        problems.append(f"mine.clones_dir: {config.mine.clones_dir} is not a directory")
    if problems:
        raise ThemisInputError("; ".join(problems))


def make_executor(config: PipelineConfig, phase: Phase, depends=None):
    """Datatrove's executor of ``config.executor.kind`` for one phase."""
    logging_dir = str(Path(config.output_dir) / "logs" / phase.name)
    options = config.executor.options
    if config.executor.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        workers = min(config.executor.workers, phase.tasks) if config.executor.workers != -1 else phase.tasks
        return LocalPipelineExecutor(
            phase.steps, tasks=phase.tasks, workers=workers, logging_dir=logging_dir, **options
        )
    if config.executor.kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(
            phase.steps,
            tasks=phase.tasks,
            logging_dir=logging_dir,
            job_name=f"themis-{phase.name}",
            depends=depends,
            **options,
        )
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(phase.steps, tasks=phase.tasks, logging_dir=logging_dir, depends=depends, **options)


def run_pipeline(config: PipelineConfig, on_phase: PhaseCallback | None = None) -> PipelineSummary | None:
    """Run every phase and return the summary (None for Slurm, whose jobs are only submitted here)."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    phases = build_pipeline(config)
    (out / "run.json").write_text(json.dumps({"config": asdict(config)}, indent=2, default=str), encoding="utf-8")
    executor = None
    for index, phase in enumerate(phases):
        if on_phase is not None:
            on_phase(phase.name, index, len(phases))
        logger.info("phase %d/%d: %s (%d tasks)", index + 1, len(phases), phase.name, phase.tasks)
        executor = make_executor(config, phase, depends=executor)
        if config.executor.kind != "slurm":
            executor.run()
    if config.executor.kind == "slurm":
        executor.run()  # submits the chain; each job waits for the one before it
        return None
    summary = summarize(out, [p.name for p in phases])
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
    return summary


def run_mine(config: PipelineConfig, on_phase: PhaseCallback | None = None) -> PipelineSummary:
    """Only mining and the message rules (no other filters, labels or dedup): ``<output_dir>/records/<rank>.jsonl``."""
    check_sources(config)
    records = record_writer(str(Path(config.output_dir) / "records"))
    phase = Phase("mine", [*mine_steps(config), records], config.executor.tasks)
    if on_phase is not None:
        on_phase(phase.name, 0, 1)
    make_executor(config, phase).run()
    return summarize(config.output_dir, [phase.name], pairs=False)


# ------------------------------------------------------------------------------------------------- summary
@dataclass
class StageCounts:
    """One step's merged counters: documents in, kept, dropped by reason, and anything else it counted."""

    phase: str
    step: str
    total: int = 0
    forwarded: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    other: dict[str, int] = field(default_factory=dict)


@dataclass
class PipelineSummary:
    stages: list[StageCounts]
    pairs: dict[str, int]

    def stage(self, step: str) -> StageCounts:
        return next(s for s in self.stages if s.step == step)

    def to_dict(self) -> dict:
        return {"stages": [asdict(s) for s in self.stages], "pairs": self.pairs}


def summarize(output_dir: str | Path, phases: list[str], pairs: bool = True) -> PipelineSummary:
    """Merge ``logs/<phase>/stats/*.json`` (one per finished task) into per-step counts, plus pairs per split."""
    out = Path(output_dir)
    stages: list[StageCounts] = []
    for phase in phases:
        merged: dict[str, StageCounts] = {}
        for path in sorted((out / "logs" / phase / "stats").glob("*.json")):
            for step in json.loads(path.read_text(encoding="utf-8")):
                name = step["name"].split(": ", 1)[-1]
                counts = merged.setdefault(name, StageCounts(phase, name))
                for key, value in step["stats"].items():
                    _add(counts, key, value)
        stages += merged.values()
    counts = {}
    for split in ("train", "validation") if pairs else ():
        files = sorted((out / "pairs" / split).glob("*.jsonl"))
        counts[split] = sum(1 for f in files for line in f.open(encoding="utf-8") if line.strip())
    return PipelineSummary(stages, counts)


# Stats that are measurements, not counts: summing them over tasks means nothing.
_NOT_COUNTS = frozenset({"dropped", "doc_len", "doc_len_tokens", "chat_tokens"})


def _add(counts: StageCounts, key: str, value) -> None:
    n = int(value["total"]) if isinstance(value, dict) else int(value)
    if key == "total":
        counts.total += n
    elif key == "forwarded":
        counts.forwarded += n
    elif key.startswith("dropped_"):
        counts.dropped[key[len("dropped_") :]] = counts.dropped.get(key[len("dropped_") :], 0) + n
    elif key not in _NOT_COUNTS and not key.endswith(".jsonl"):
        counts.other[key] = counts.other.get(key, 0) + n
