"""``pipeline.yaml`` -> :class:`PipelineConfig`: every section is the config dataclass of the module that uses it.

Loading checks the whole file and raises once with every problem (unknown keys, wrong types, invalid values), each
named by its YAML path, e.g. ``dedup.minhash.threshold must be in (0, 1), got 1.5``. Relative paths in the file are
resolved against the file's directory.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from themis_rm.data.aspects import AspectConfig
from themis_rm.data.assemble import AssembleConfig
from themis_rm.data.dedup import DedupConfig
from themis_rm.data.filters import FilterConfig
from themis_rm.data.llm_steps import LLMConfig
from themis_rm.data.mine import MineConfig
from themis_rm.errors import ThemisInputError
from themis_rm.yamlfile import read_yaml_mapping

EXECUTORS = ("local", "slurm", "ray")
# Keys (dotted paths) holding file paths, resolved against the config file's directory.
PATH_KEYS = (
    "output_dir",
    "mine.repos",
    "mine.repos_file",
    "mine.bigquery",
    "mine.clones_dir",
    "mine.extension_map",
    "filters.message.blocklist",
    "filters.repo_allowlist",
    "aspects.terms_dir",
    "llm.templates_dir",
    "llm.cache_dir",
    "assemble.decontam.benchmarks",
)
# Tokenizers may be hub ids: resolved only when the relative path exists beside the config file.
SOFT_PATH_KEYS = ("filters.token_length.tokenizer", "assemble.tokenizer")


@dataclass
class ExecutorConfig:
    """Where the tasks run: datatrove's local, Slurm or Ray executor, with the same pipeline."""

    kind: str = "local"
    tasks: int = 1
    """Shards of the work (repositories and records are dealt round-robin); fixed for the life of an output dir."""
    workers: int = 1
    """Local executor: tasks run at once (-1: all)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra arguments of the executor: Slurm/Ray (``partition``, ``time``, ``cpus_per_task``, ...), local
    (``start_method``: ``forkserver`` by default, ``fork`` starts workers faster)."""

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ThemisInputError(f"executor.kind must be one of {', '.join(EXECUTORS)}, got {self.kind!r}")
        if self.tasks < 1 or (self.workers < 1 and self.workers != -1):
            raise ThemisInputError(
                f"executor needs tasks >= 1 and workers >= 1 (or -1), got {self.tasks}, {self.workers}"
            )


@dataclass
class PipelineConfig:
    """One ``themis data run``: sources, filters, labels, dedup, LLM stages, assembly and executor."""

    output_dir: str
    mine: MineConfig = field(default_factory=MineConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    aspects: AspectConfig = field(default_factory=AspectConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    assemble: AssembleConfig = field(default_factory=AssembleConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a pipeline YAML; ``overrides`` maps dotted keys (``executor.workers``) to values set on top."""
    path = Path(path)
    data = read_yaml_mapping(path, what="the pipeline YAML", where=str(path), extra="data")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    _resolve_paths(data, path.parent)
    return config_from_dict(data, str(path))


def config_from_dict(data: dict[str, Any], source: str = "config") -> PipelineConfig:
    """Build and validate a :class:`PipelineConfig`, collecting every problem before raising."""
    problems: list[str] = []
    config = _build(PipelineConfig, data, "", problems)
    if problems:
        raise ThemisInputError(f"{source}: " + "; ".join(problems))
    return config


def _build(cls, data: Any, where: str, problems: list[str]):
    if not isinstance(data, dict):
        problems.append(f"{where or 'top level'} must be a mapping, got {type(data).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(set(data) - names):
        problems.append(f"{where}{key} is not a known key (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name in names & set(data):
        kwargs[name] = _value(hints[name], data[name], f"{where}{name}", problems)
    try:
        return cls(**kwargs)
    except ThemisInputError as exc:
        problems.append(str(exc))
    except TypeError as exc:  # a required field is missing
        problems.append(f"{where or 'top level'}: {exc}")
    return None


def _value(hint, value: Any, where: str, problems: list[str]):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{where}.", problems)
    if origin is list:
        if isinstance(value, str | int | float):
            value = [value]
        if not isinstance(value, list):
            problems.append(f"{where} must be a list, got {type(value).__name__}")
            return []
        return value
    if hint is str and isinstance(value, datetime.date):
        return value.isoformat()  # YAML reads an unquoted 2019-03-01 as a date
    expected = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}.get(hint)
    if expected and (not isinstance(value, expected) or (hint is not bool and isinstance(value, bool))):
        problems.append(f"{where} must be {hint.__name__}, got {value!r}")
    return float(value) if hint is float and isinstance(value, int) else value


def _set_dotted(data: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ThemisInputError(f"override {key}: {part} is not a section")
    node[last] = value


def _resolve_paths(data: dict, base: Path) -> None:
    for key in (*PATH_KEYS, *SOFT_PATH_KEYS):
        soft = key in SOFT_PATH_KEYS
        *parents, last = key.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get(last) is None:
            continue
        value = node[last]
        if isinstance(value, list):
            node[last] = [_resolve(v, base, soft) for v in value]
        else:
            node[last] = _resolve(value, base, soft)


def _resolve(value: Any, base: Path, soft: bool) -> Any:
    if not isinstance(value, str) or not value or "://" in value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute() or (soft and not (base / path).exists()):
        return str(path) if path.is_absolute() else value
    return str(base / path)
