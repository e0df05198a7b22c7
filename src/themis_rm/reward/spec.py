"""The reward spec: which components make up a composite code reward, how each is weighted, gated and normalised.

One YAML/TOML/JSON file (or the same dataclasses built in Python), validated as a whole before any model loads:
every bad field is reported at once, each named by its place in the file (``components[2].weight``)::

    rm: {model: project-themis/Themis-RM-8B, dtype: bf16}
    components:
      - {kind: rm, criteria: functional, weight: 1.0, normalize: group_z}
      - {kind: tests, weight: 2.0, gate: {below: 1.0, floor: -1.0}}
      - {kind: static, analyzer: lint, weight: 0.1}
      - {kind: static, analyzer: security, weight: 0.5}
      - {kind: measure, metric: cpu_time, weight: 0.2, normalize: rank}
    cascade: {top_k: 2, margin: 0.5}
    execution: {backend: local, timeout_s: 10, workers: 4}
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from themis_rm.config import config_problems, config_to_dict, load_config, setting
from themis_rm.errors import ThemisInputError
from themis_rm.reward.static import ANALYZERS, RULES_APPLY_TO
from themis_rm.scoring.config import ModelConfig
from themis_rm.yamlfile import read_yaml_mapping

KINDS = ("rm", "tests", "static", "measure")
NORMALIZATIONS = ("none", "group_z", "rank")
METRICS = ("cpu_time", "peak_memory")
BACKENDS = ("local", "sandbox_fusion")
EXECUTED = ("tests", "measure")  # the kinds that run the candidate (what the cascade saves)


@dataclass(frozen=True)
class GateSpec:
    """A component's gate: when its raw value is below ``below``, the candidate's whole reward is ``floor``."""

    below: float | None = setting(None, "Close the gate when the raw value is below this (none: no gate).")
    floor: float = setting(-1.0, "The reward of a candidate whose gate closed.")


@dataclass(frozen=True)
class ComponentSpec:
    """One term of the composite reward."""

    kind: str | None = setting(None, "rm, tests, static or measure.", required=True, choices=KINDS)
    name: str | None = setting(None, "Name in the outputs; default: the kind with its criteria/analyzer/metric.")
    weight: float = setting(1.0, "Weight of the normalised value in the composite.")
    normalize: str = setting("none", "none, group_z (z-score within a group, as GRPO) or rank.", choices=NORMALIZATIONS)
    gate: GateSpec = setting(default_factory=GateSpec)
    criteria: str | None = setting(None, "rm: criteria (a name, alias, comma list, 'full' or 'none').")
    analyzer: str | None = setting(
        None, "static: lint, security, complexity, maintainability, ruff or bandit.", choices=tuple(ANALYZERS)
    )
    rules: str | None = setting(None, "static lint/ruff: ruff's rule selection (default: E,F,W,B,SIM,C90,N,UP).")
    metric: str | None = setting(None, "measure: cpu_time or peak_memory of the tests' run.", choices=METRICS)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        detail = {"rm": self.criteria or "none", "static": self.analyzer, "measure": self.metric}.get(self.kind)
        return f"{self.kind}:{detail}" if detail else str(self.kind)

    def problems(self) -> Iterator[str]:
        needs = {"static": "analyzer", "measure": "metric"}
        if self.kind in needs and getattr(self, needs[self.kind]) is None:
            yield f"a {self.kind} component needs '{needs[self.kind]}'"
        for name, kind in (("criteria", "rm"), ("analyzer", "static"), ("metric", "measure"), ("rules", "static")):
            if getattr(self, name) is not None and self.kind != kind:
                yield f"'{name}' applies to {kind} components, not {self.kind}"
        if self.rules is not None and self.kind == "static" and self.analyzer not in RULES_APPLY_TO:
            yield f"'rules' is ruff's rule selection (analyzer lint or ruff), not {self.analyzer}'s"


@dataclass(frozen=True)
class CascadeSpec:
    """Run the executed components (tests, measure) only where the reward model leaves the ranking open."""

    top_k: int | None = setting(None, "Execute only the top-k candidates of each group by the rm components.", ge=1)
    margin: float | None = setting(
        None, "Also execute candidates whose rm score is within this margin of the k-th best.", ge=0
    )
    skipped_value: float = setting(0.0, "Raw tests value of a candidate the cascade did not run (0: counted failed).")

    @property
    def enabled(self) -> bool:
        return self.top_k is not None


@dataclass(frozen=True)
class ExecutionSpec:
    """Where and how candidates run."""

    backend: str = setting(
        "local", "local (this machine's sandbox) or sandbox_fusion (its HTTP API).", choices=BACKENDS
    )
    url: str | None = setting(None, "sandbox_fusion: the server root, e.g. http://127.0.0.1:8080.")
    timeout_s: float = setting(10.0, "Wall-clock limit per run (per case for input/output tests).", gt=0)
    memory_mb: int = setting(1024, "Memory cap per run.", ge=16)
    workers: int = setting(4, "Runs in flight at once.", ge=1)
    compare: str = setting("lines", "Input/output cases: lines, tokens or exact.", choices=("lines", "tokens", "exact"))
    repeats: int = setting(1, "measure: runs per candidate; the median is kept.", ge=1)
    request_timeout_s: float = setting(60.0, "sandbox_fusion: HTTP timeout per request.", gt=0)
    retries: int = setting(2, "sandbox_fusion: retries of a request that failed to connect or got a 5xx.", ge=0)


@dataclass(kw_only=True)
class RmSection(ModelConfig):
    """The reward model the rm components score with (required only when there is one)."""

    model: str | None = setting(None, "Reward model: hub id or local directory (needed by rm components).")


@dataclass(kw_only=True)
class RewardSpec:
    """Reward spec: components, the reward model they share, the cascade and the execution backend."""

    components: tuple[ComponentSpec, ...] = field(default=())
    rm: RmSection = setting(default_factory=RmSection)
    cascade: CascadeSpec = setting(default_factory=CascadeSpec)
    execution: ExecutionSpec = setting(default_factory=ExecutionSpec)

    def of_kind(self, *kinds: str) -> list[ComponentSpec]:
        return [c for c in self.components if c.kind in kinds]

    def problems(self) -> Iterator[str]:
        if not self.components:
            yield "components: at least one component is needed"
        labels = [c.label for c in self.components]
        for label in sorted({x for x in labels if labels.count(x) > 1}):
            yield f"components: two components are named {label!r} (set 'name' on one)"
        if self.of_kind("rm") and not self.rm.model:
            yield "rm.model is required: a component of kind rm scores with it"
        if self.cascade.enabled and not self.of_kind("rm"):
            yield "cascade.top_k needs an rm component to rank by"
        if self.cascade.enabled and not self.of_kind(*EXECUTED):
            yield "cascade.top_k: there is no tests or measure component to save"
        if self.execution.backend == "sandbox_fusion" and not self.execution.url:
            yield "execution.url is required with backend sandbox_fusion"


def load_reward_spec(source: str | Path | Mapping[str, Any], *, model: str | None = None) -> RewardSpec:
    """A spec from a YAML/TOML/JSON file or an already-read mapping; every problem is raised at once.

    ``model``: the reward model when the spec names none (``themis serve --reward-spec``: the served one).
    """
    where = f" {source}" if not isinstance(source, Mapping) else ""
    data = dict(source) if isinstance(source, Mapping) else _read(Path(source))
    if model is not None:
        rm = data.get("rm") if isinstance(data.get("rm"), Mapping) else {}
        data["rm"] = {**rm, "model": rm.get("model") or model}
    problems: list[str] = []
    items = data.pop("components", None)
    if not isinstance(items, list):
        problems.append(f"'components' must be a list of mappings, got {type(items).__name__}")
        items = []
    components: list[ComponentSpec | None] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            problems.append(f"components[{index}] must be a mapping, got {type(item).__name__}")
            continue
        components.append(_collect(problems, ComponentSpec, f"components[{index}]", item))
    sections = _collect(problems, RewardSpec, "top level", data)
    if not problems:  # everything built: the full checks, cross-field ones included
        return validate_reward_spec(replace(sections, components=tuple(components)), where)
    for index, component in enumerate(components):  # else what built is still checked, to report it all at once
        if component is not None:
            problems += _component_problems(component, index)
    if sections is not None:
        problems += [p for name in SECTIONS for p in config_problems(getattr(sections, name), where=name)]
    raise ThemisInputError(f"invalid reward spec{where}:\n  " + "\n  ".join(problems))


SECTIONS = ("rm", "cascade", "execution")


def validate_reward_spec(spec: RewardSpec, where: str = "") -> RewardSpec:
    """Every field's choices and bounds, each section's and the spec's own cross-field checks, raised at once."""
    problems = [p for index, c in enumerate(spec.components) for p in _component_problems(c, index)]
    problems += [p for name in SECTIONS for p in config_problems(getattr(spec, name), where=name)]
    problems += list(spec.problems())
    if problems:
        raise ThemisInputError(f"invalid reward spec{where}:\n  " + "\n  ".join(problems))
    return spec


def spec_to_dict(spec: RewardSpec) -> dict[str, Any]:
    """JSON-ready, in the file's layout (what run.json records)."""
    sections = {name: config_to_dict(getattr(spec, name)) for name in SECTIONS}
    return {"components": [config_to_dict(c) for c in spec.components], **sections}


def _component_problems(component: ComponentSpec, index: int) -> list[str]:
    label = f"components[{index}]"
    return [p if p.startswith(label) else f"{label}: {p}" for p in config_problems(component, where=label)]


def _collect(problems: list[str], cls: type, label: str, data: Mapping[str, Any]):
    """Build ``cls`` from ``data``, moving the loader's problems (one per line after its heading) into
    ``problems``; None when it could not be built."""
    try:
        return load_config(cls, label, data=data, validate=False)
    except ThemisInputError as error:
        lines = str(error).splitlines()
        problems += [line.strip() for line in (lines[1:] if len(lines) > 1 else lines)]
        return None


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ThemisInputError(f"--spec {path}: no such file")
    if path.suffix == ".toml":
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ThemisInputError(f"--spec {path}: not valid TOML: {error}") from error
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ThemisInputError(f"--spec {path}: not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise ThemisInputError(f"--spec {path}: must hold a JSON object")
        return data
    return read_yaml_mapping(path, what="the reward spec", where=f"--spec {path}")
