"""The composite reward: reward-model criteria, sandboxed tests, static analysis and measured cost as one reward.

For a batch of groups (one prompt, n completions each)::

    raw values      rm (one Scorer pass per rm component), static (one analyser run per batch),
                    tests and measure (sandboxed runs; with a cascade only where the rm components leave the
                    ranking open)
    per group       each component normalised (none / group_z / rank), weighted and summed
    gates           a component whose raw value is below its gate sets the whole reward to the gate's floor

Every candidate keeps its raw and normalised components and the evidence behind them (test failures, analyser
findings, timings), so per-reward normalisation (GDPO) or TRL's ``reward_funcs`` + ``reward_weights`` can use
the vector instead of the sum.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from themis_rm.pairs import ScoreRequest
from themis_rm.reward.execution import Executor, Job, build_executor
from themis_rm.reward.groups import RewardGroup
from themis_rm.reward.normalize import normalize
from themis_rm.reward.spec import EXECUTED, ComponentSpec, RewardSpec, load_reward_spec, validate_reward_spec
from themis_rm.reward.static import StaticResult, analyse, check_analyzers, coverage
from themis_rm.sandbox import TestReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CandidateReward:
    """One completion's reward, its components (raw and normalised) and the evidence behind them."""

    reward: float
    raw: dict[str, float | None]
    normalized: dict[str, float | None]
    gated_by: str | None = None
    evidence: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupReward:
    id: str
    candidates: list[CandidateReward]
    executions: int  # sandboxed runs made for this group (reference runs included)
    executions_saved: int  # runs the cascade skipped

    @property
    def rewards(self) -> list[float]:
        return [c.reward for c in self.candidates]

    def to_record(self) -> dict:
        """One JSON line: the group's scalars, each component as a vector, and per-candidate evidence."""
        labels = list(self.candidates[0].raw) if self.candidates else []
        return {
            "id": self.id,
            "rewards": self.rewards,
            "components": {label: [c.normalized[label] for c in self.candidates] for label in labels},
            "raw": {label: [c.raw[label] for c in self.candidates] for label in labels},
            "gated_by": [c.gated_by for c in self.candidates],
            "evidence": [c.evidence for c in self.candidates],
            "executions": self.executions,
            "executions_saved": self.executions_saved,
        }


class CompositeReward:
    """Scores groups of completions under a :class:`RewardSpec`.

    ``scorer`` (a :class:`~themis_rm.scoring.scorer.Scorer`) is built from ``spec.rm`` on first use when the spec
    has rm components and none is given; ``executor`` defaults to the spec's execution backend.
    """

    def __init__(self, spec: RewardSpec, *, scorer=None, executor: Executor | None = None) -> None:
        self.spec = validate_reward_spec(spec)
        self._scorer = scorer
        self.executor = executor or build_executor(spec.execution)
        self.analyzers = [c.analyzer for c in spec.of_kind("static")]
        check_analyzers(self.analyzers)
        for name, by_language in coverage(self.analyzers).items():
            for language, why in by_language.items():
                if why.startswith("unavailable"):
                    logger.warning(
                        "static %s cannot read %s here (%s)", name, language, why.removeprefix("unavailable: ")
                    )

    @classmethod
    def from_spec(cls, source: str | Path | RewardSpec, **kwargs) -> CompositeReward:
        spec = source if isinstance(source, RewardSpec) else load_reward_spec(source)
        return cls(spec, **kwargs)

    @property
    def scorer(self):
        if self._scorer is None:
            from themis_rm.packs import resolve_pack
            from themis_rm.scoring.scorer import Scorer

            rm = self.spec.rm
            wants_pack = any((c.criteria or "none").strip().lower() != "none" for c in self.spec.of_kind("rm"))
            pack = resolve_pack(rm.prompt_pack, rm.criteria_file) if wants_pack else None
            self._scorer = Scorer.from_job_config(rm, pack)
        return self._scorer

    def check(self, groups: Sequence[RewardGroup]) -> None:
        """Start-up checks on the input: every language in it has the analysers the static components need, and
        every group the executed components need can run on this backend."""
        check_analyzers(self.analyzers, {g.language for g in groups})
        if self.spec.of_kind(*EXECUTED):
            self.executor.check([g for g in groups if g.testable])

    # ------------------------------------------------------------------------------------------------ scoring
    def score(
        self, groups: Sequence[RewardGroup], progress: Callable[[str, int, int], None] | None = None
    ) -> list[GroupReward]:
        """Rewards for every group; ``progress(stage, done, total)`` is told of the model and sandbox work."""
        self.check(groups)  # before the model runs
        rm = {component.label: self._rm(component, groups, progress) for component in self.spec.of_kind("rm")}
        return self._combine(groups, rm, progress)

    def score_with(
        self,
        groups: Sequence[RewardGroup],
        rm: dict[str, list[float | None]],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[GroupReward]:
        """:meth:`score` with the rm components' raw values already computed (``{label: one per candidate}``,
        flat over the groups): the server scores them through its batcher, then calls this off the event loop."""
        self.check(groups)
        return self._combine(groups, rm, progress)

    def _combine(self, groups, rm, progress) -> list[GroupReward]:
        spans = _spans(groups)
        raw: dict[str, list[float | None]] = dict(rm)
        evidence: dict[str, list[dict]] = {}
        for component in self.spec.of_kind("static"):
            results = self._static(component, groups)
            raw[component.label] = [r.value for r in results]
            evidence[component.label] = [r.evidence() for r in results]
        executed = self._execute(groups, spans, raw, progress)
        for component in self.spec.components:
            if component.kind in EXECUTED:
                values, notes = _executed_values(component, groups, spans, executed, self.spec.cascade.skipped_value)
                raw[component.label], evidence[component.label] = values, notes
        return [
            self._compose(i, group, span, raw, evidence, executed)
            for i, (group, span) in enumerate(zip(groups, spans, strict=True))
        ]

    def _rm(self, component: ComponentSpec, groups, progress) -> list[float | None]:
        scorer = self.scorer
        system = scorer.system_prompt(component.criteria)
        requests = [ScoreRequest(g.prompt, c, system) for g in groups for c in g.completions]
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(component.label, done[0], len(requests))

        rewards = scorer.score_requests(requests, step).rewards.tolist()
        return [float(r) if math.isfinite(r) else None for r in rewards]

    def _static(self, component: ComponentSpec, groups) -> list[StaticResult]:
        programs = [p for g in groups for p in g.programs()]
        languages = [g.language for g in groups for _ in g.completions]
        return analyse(component.analyzer, programs, languages, rules=component.rules)

    def _execute(self, groups, spans, raw, progress) -> Execution:
        """Run the candidates the executed components need (all, or the cascade's choice) and the references."""
        execution = Execution()
        if not self.spec.of_kind(*EXECUTED):
            return execution
        wants_reference = bool(self.spec.of_kind("measure"))
        jobs: list[tuple[tuple[str, int], Job]] = []
        for group_index, (group, span) in enumerate(zip(groups, spans, strict=True)):
            if not group.testable:
                continue
            chosen = self._cascade(span, raw) if self.spec.cascade.enabled else range(len(group.completions))
            chosen = sorted(set(chosen))
            execution.possible += len(group.completions)
            programs = group.programs()
            jobs += [(("candidate", span.start + i), Job(programs[i], group)) for i in chosen]
            if wants_reference and group.reference:
                jobs.append((("reference", group_index), Job(group.reference, group)))
        total = len(jobs)
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress("sandbox", done[0], total)

        reports = self.executor.run([job for _, job in jobs], step)
        for (kind, index), report in zip((key for key, _ in jobs), reports, strict=True):
            (execution.candidates if kind == "candidate" else execution.references)[index] = report
        execution.run = len(jobs)
        return execution

    def _cascade(self, span: range, raw) -> list[int]:
        """Indices (within the group) the cascade executes: the top-k by the rm part, plus those within
        ``margin`` of the k-th best."""
        partial = [0.0] * len(span)
        for component in self.spec.of_kind("rm"):
            values = normalize([raw[component.label][i] for i in span], component.normalize)
            for i, value in enumerate(values):
                partial[i] += component.weight * (value if value is not None else 0.0)
        order = sorted(range(len(span)), key=lambda i: -partial[i])
        cascade = self.spec.cascade
        chosen = order[: cascade.top_k]
        if cascade.margin is not None and chosen:
            kth = partial[chosen[-1]]
            chosen += [i for i in order[cascade.top_k :] if partial[i] >= kth - cascade.margin]
        return chosen

    def _compose(self, group_index: int, group, span, raw, evidence, executed: Execution) -> GroupReward:
        labels = [c.label for c in self.spec.components]
        normalized = {c.label: normalize([raw[c.label][i] for i in span], c.normalize) for c in self.spec.components}
        candidates = []
        for position, index in enumerate(span):
            values = {label: raw[label][index] for label in labels}
            scaled = {label: normalized[label][position] for label in labels}
            reward = sum(c.weight * (scaled[c.label] or 0.0) for c in self.spec.components)
            gate = next((c for c in self.spec.components if _closes(c, values[c.label])), None)
            notes = {label: column[index] for label, column in evidence.items() if column[index]}
            reward = gate.gate.floor if gate is not None else reward
            candidates.append(CandidateReward(float(reward), values, scaled, gate and gate.label, notes))
        ran = sum(1 for i in span if i in executed.candidates)
        subject = group.testable and bool(self.spec.of_kind(*EXECUTED))
        return GroupReward(
            group.id,
            candidates,
            executions=ran + (group_index in executed.references),
            executions_saved=len(span) - ran if subject else 0,
        )


def _closes(component: ComponentSpec, value: float | None) -> bool:
    return component.gate.below is not None and value is not None and value < component.gate.below


@dataclass
class Execution:
    """The sandboxed runs of one batch: candidate reports by global index, reference reports by group index."""

    candidates: dict[int, TestReport] = field(default_factory=dict)
    references: dict[int, TestReport] = field(default_factory=dict)
    run: int = 0
    possible: int = 0  # runs without the cascade


def _spans(groups: Sequence[RewardGroup]) -> list[range]:
    """Each group's slice of the flat candidate list."""
    spans, start = [], 0
    for group in groups:
        spans.append(range(start, start + len(group.completions)))
        start += len(group.completions)
    return spans


def _executed_values(
    component: ComponentSpec, groups, spans, executed: Execution, skipped_value: float
) -> tuple[list[float | None], list[dict]]:
    """A tests or measure component's raw values and evidence for every candidate."""
    values: list[float | None] = []
    notes: list[dict] = []
    for group_index, (group, span) in enumerate(zip(groups, spans, strict=True)):
        reference = executed.references.get(group_index)
        for index in span:
            report = executed.candidates.get(index)
            if not group.testable:
                values.append(None)
                notes.append({"note": "the group has no tests"})
            elif report is None:
                values.append(skipped_value if component.kind == "tests" else None)
                notes.append({"note": "not executed (cascade)"})
            elif component.kind == "tests":
                values.append(report.passed / max(1, report.passed + report.failed))
                notes.append(_test_evidence(report))
            else:
                value, note = _measure(component.metric, report, reference)
                values.append(value)
                notes.append(note)
    return values, notes


def _test_evidence(report: TestReport) -> dict:
    out = {"passed": report.passed, "failed": report.failed}
    if report.error:
        out["error"] = report.error
    if report.first_failure:
        out["first_failure"] = report.first_failure
    if report.contained:
        out["contained"] = list(report.contained)
    return out


def _measure(metric: str, report: TestReport, reference: TestReport | None) -> tuple[float | None, dict]:
    """``log(reference / candidate)`` of the cost when the group's reference ran clean (> 0: cheaper than the
    reference), else minus the cost; no value for a candidate that did not pass every test."""
    if not report.all_passed:
        return None, {"note": "not measured: it did not pass every test"}
    attribute, unit = ("cpu_s", "cpu_s") if metric == "cpu_time" else ("peak_memory_mb", "peak_memory_mb")
    cost = getattr(report, attribute)
    if cost is None:
        return None, {"note": f"the backend does not measure {metric}"}
    note = {unit: cost}
    base = getattr(reference, attribute) if reference is not None and reference.all_passed else None
    if base is not None and base > 0 and cost > 0:
        note[f"reference_{unit}"] = base
        return math.log(base / cost), note
    return -float(cost), note
