"""One way to declare a job's settings: a dataclass field said once, read from YAML, flags, env, or Python.

Every job config (``ScoreConfig``, ``BenchConfig``, ``RerankConfig``, ``TrainConfig``, ``ServeSettings``,
``PipelineConfig``, ``DemoConfig``) is a dataclass whose fields are built with :func:`setting`: type (the
annotation), default, help text and validation live in that one place. From it this module derives

* the YAML loading (``--config run.yaml``): nested sections are nested dataclasses, unknown keys and wrong types
  are errors naming the key;
* the typer options of the job's command (:func:`config_command`): one ``--flag`` per field, named like the field
  (``max_length`` -> ``--max-length``), help from the field, the default shown;
* validation (:func:`validate_config`): choices and bounds from the field, plus the class's own cross-field
  ``problems()``; every problem is collected and raised once.

Precedence is defaults < YAML < environment (``env_prefix``, when the job has one) < flags. Example::

    @dataclass
    class RunConfig:
        max_length: int = setting(4096, "Token budget per sequence.", gt=0)
        ties: str = setting("wrong", "Tie policy.", choices=("wrong", "half"))

A field's flag is its name; a name that two sections share gets its parent section as prefix
(``filters.message.min_chars`` -> ``--message-min-chars``). Old spellings stay as hidden, deprecated aliases.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from themis_rm.errors import ThemisInputError
from themis_rm.yamlfile import read_yaml_mapping

logger = logging.getLogger(__name__)
C = TypeVar("C")
_MISSING = dataclasses.MISSING


def setting(
    default: Any = _MISSING,
    help: str = "",
    *,
    default_factory: Callable[[], Any] | None = None,
    required: bool = False,
    choices: tuple[str, ...] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    flags: tuple[str, ...] = (),
    deprecated: tuple[str, ...] = (),
    cli: bool = True,
    secret: bool = False,
    flag_format: str | None = None,
    argument: bool = False,
) -> Any:
    """A config field with its one help text and its checks.

    Args:
        default: the default; mutable defaults need ``default_factory``.
        help: the only documentation of the field (CLI help, YAML comments, docs).
        required: ``None`` by default, but a run needs a value (validation names the flag and the YAML key).
        choices, gt, ge, lt: checked by :func:`validate_config`.
        flags: extra spellings of the option (e.g. ``("-o",)``).
        deprecated: old spellings still accepted, with a warning (hidden from ``--help``).
        cli: ``False`` for YAML-only fields (mappings, rarely changed structure).
        secret: kept out of ``repr`` and of :func:`config_to_dict` (API keys).
        flag_format: on a section field, how its fields are spelt as flags (``"{name}-field"`` turns the
            section's ``prompt`` into ``--prompt-field``).
        argument: a positional command-line argument instead of an option (``themis data mine REPOS...``).
    """
    if isinstance(default, list | dict | set):
        raise TypeError("use an immutable default (tuple) or default_factory for config fields")
    metadata = {
        "help": help,
        "required": required,
        "choices": choices,
        "bounds": {"gt": gt, "ge": ge, "lt": lt},
        "flags": flags,
        "deprecated": deprecated,
        "cli": cli,
        "secret": secret,
        "flag_format": flag_format,
        "argument": argument,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata, repr=not secret)
    if default is _MISSING:
        default = None
    return field(default=default, metadata=metadata, repr=not secret)


# ------------------------------------------------------------------------------------------------ the tree
@dataclass(frozen=True)
class Leaf:
    """One settable field of a config tree: where it lives and how it is spelt on the command line."""

    path: tuple[str, ...]  # ("batch", "max_length")
    owner: type
    spec: dataclasses.Field
    hint: Any
    flag_format: str | None = None  # from the enclosing section's setting(flag_format=...)

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def yaml_key(self) -> str:
        return ".".join(self.path)

    @property
    def help(self) -> str:
        return self.spec.metadata.get("help", "")

    @property
    def default(self) -> Any:
        if self.spec.default_factory is not _MISSING:
            return self.spec.default_factory()
        return None if self.spec.default is _MISSING else self.spec.default


def config_leaves(cls: type) -> list[Leaf]:
    """Every settable field of ``cls`` and its sections, depth first, in declaration order."""
    return list(_walk(cls, (), None))


def _walk(cls: type, prefix: tuple[str, ...], flag_format: str | None) -> Iterator[Leaf]:
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if not spec.init:
            continue
        hint = hints[spec.name]
        if _section_type(hint) is not None:
            inner_format = spec.metadata.get("flag_format") or flag_format
            yield from _walk(_section_type(hint), (*prefix, spec.name), inner_format)
        else:
            yield Leaf((*prefix, spec.name), cls, spec, hint, flag_format)


def flag_names(cls: type) -> dict[tuple[str, ...], str]:
    """``path -> option name`` (without ``--``): the field name, prefixed by its parents only where names clash."""
    leaves = [leaf for leaf in config_leaves(cls) if leaf.spec.metadata.get("cli", True)]
    names: dict[tuple[str, ...], str] = {}
    depth = 1
    pending = leaves
    while pending:
        spelt = {leaf.path: _spell(leaf, depth) for leaf in pending}
        counts: dict[str, int] = {}
        for name in spelt.values():
            counts[name] = counts.get(name, 0) + 1
        pending = [leaf for leaf in pending if counts[spelt[leaf.path]] > 1 and depth < len(leaf.path)]
        for leaf in leaves:
            if leaf.path in spelt and leaf not in pending and leaf.path not in names:
                names[leaf.path] = spelt[leaf.path]
        depth += 1
    return names


def _spell(leaf: Leaf, depth: int) -> str:
    name = "-".join(leaf.path[-depth:])
    if leaf.flag_format:
        name = leaf.flag_format.format(name=name)
    return name.replace("_", "-")


# ------------------------------------------------------------------------------------------------ loading
def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    env_prefix: str | None = None,
    base: C | None = None,
    validate: bool = True,
    data: Mapping[str, Any] | None = None,
) -> C:
    """Build a config: defaults (or ``base``) < YAML at ``path`` < ``env_prefix`` variables < ``overrides``.

    ``overrides`` maps field names or dotted YAML keys to values; ``None`` means "not given" (a flag left out).
    A YAML ``null`` resets an optional field. ``data``: the YAML's mapping already read (and perhaps rewritten,
    e.g. relative paths resolved) by the caller; ``path`` then only names it in messages.
    """
    values: dict[tuple[str, ...], tuple[Any, str]] = {}  # path -> (value, where it came from)
    problems: list[str] = []
    if data is None and path is not None:
        data = read_yaml_mapping(Path(path), what="the config YAML", where=f"--config {path}")
    if data is not None:
        _flatten(cls, data, (), values, problems, str(path) if path is not None else "config")
    if env_prefix:
        for leaf in config_leaves(cls):
            variable = env_prefix + "_".join(leaf.path).upper()
            if variable in os.environ:
                values[leaf.path] = (os.environ[variable], f"${variable}")
    leaves_by_name = _leaves_by_name(cls)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        leaf = leaves_by_name.get(key)
        if leaf is None:
            raise ThemisInputError(f"unknown setting {key!r} (valid: {', '.join(sorted(leaves_by_name))})")
        values[leaf.path] = (value, "--" + key.replace("_", "-"))
    config = _build(cls, base, values, problems)
    if problems:
        raise ThemisInputError(f"invalid {_title(cls)}:\n  " + "\n  ".join(problems))
    if validate:
        validate_config(config)
    return config


def _flatten(cls, data: Any, prefix: tuple[str, ...], out: dict, problems: list[str], source: str) -> None:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    renamed = {_bare(old): f.name for f in known.values() for old in f.metadata.get("deprecated", ())}
    for key, value in data.items():
        where = ".".join((*prefix, str(key)))
        if key not in known and key in renamed:
            logger.warning("%s: '%s' is deprecated; use '%s'", source, where, ".".join((*prefix, renamed[key])))
            key = renamed[key]
        if key not in known:
            problems.append(f"{source}: unknown key '{where}' (valid: {', '.join(sorted(known))})")
            continue
        section = _section_type(hints[key])
        if section is None:
            out[(*prefix, key)] = (value, f"{source}: {where}")
        elif isinstance(value, dict):
            _flatten(section, value, (*prefix, key), out, problems, source)
        else:
            problems.append(f"{source}: section '{where}' must be a mapping, got {type(value).__name__}")


def _build(cls, base, values: dict, problems: list[str], prefix: tuple[str, ...] = ()) -> Any:
    """Instantiate ``cls`` (recursively) from the given values, else ``base``'s, else the defaults."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        if not spec.init:
            continue
        key = (*prefix, spec.name)
        section = _section_type(hints[spec.name])
        if section is not None:
            inner_base = getattr(base, spec.name) if base is not None else None
            kwargs[spec.name] = _build(section, inner_base, values, problems, key)
        elif key in values:
            value, label = values[key]
            try:
                kwargs[spec.name] = coerce(hints[spec.name], value, label)
            except ThemisInputError as exc:
                problems.append(str(exc))
        elif base is not None:
            kwargs[spec.name] = getattr(base, spec.name)
    try:
        return cls(**kwargs)
    except ThemisInputError as exc:  # a section's own __post_init__ check
        problems.append(str(exc))
        return None


def _leaves_by_name(cls: type) -> dict[str, Leaf]:
    flags = flag_names(cls)
    out: dict[str, Leaf] = {}
    for leaf in config_leaves(cls):
        out[leaf.yaml_key] = leaf
        if leaf.path in flags:
            out[flags[leaf.path].replace("-", "_")] = leaf
        out.setdefault(leaf.name, leaf)
    for leaf in config_leaves(cls):  # old spellings last: a current name always wins
        for old in leaf.spec.metadata.get("deprecated", ()):
            out.setdefault(_bare(old), leaf)
    return out


def _bare(flag: str) -> str:
    """``--prompts-mode`` -> ``prompts_mode``: how an old flag is spelt as a YAML key or Python override."""
    return flag.lstrip("-").replace("-", "_")


# ------------------------------------------------------------------------------------------------ types
def coerce(hint: Any, value: Any, label: str) -> Any:
    """Convert a YAML/CLI/env value to the annotated type; a mismatch names the flag or YAML key."""
    optional = _is_union(hint) and type(None) in typing.get_args(hint)
    options = [t for t in typing.get_args(hint) if t is not type(None)] if _is_union(hint) else [hint]
    target = options[0]
    if value is None or (optional and target is not str and isinstance(value, str) and value.lower() == "none"):
        if optional:
            return None
        raise ThemisInputError(f"{label} cannot be null")
    try:
        return _convert(target, value)
    except (TypeError, ValueError) as exc:
        want = getattr(target, "__name__", str(target))
        raise ThemisInputError(f"{label} must be {want}, got {value!r}") from exc


def _convert(target: Any, value: Any) -> Any:
    origin = typing.get_origin(target)
    if origin in (tuple, list):
        items = value if isinstance(value, list | tuple) else [value]
        items = (
            [part.strip() for x in items for part in x.split(",")] if all(isinstance(x, str) for x in items) else items
        )
        items = [x for x in items if x != ""]
        item_type = typing.get_args(target)[0] if typing.get_args(target) else str
        converted = [_convert(item_type, x) for x in items]
        return tuple(converted) if origin is tuple else converted
    if origin is dict or target is dict:
        if not isinstance(value, dict):
            raise TypeError
        return dict(value)
    if target is Any:
        return value
    if target is bool:
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(value, bool):
            return value
        raise TypeError
    if isinstance(value, bool):
        raise TypeError  # YAML `true` is not a number or a string
    if target is float:
        return float(value)
    if target is int:
        if isinstance(value, float) and not value.is_integer():
            raise TypeError
        return int(value)
    if target is str:
        if isinstance(value, datetime.date):
            return value.isoformat()  # YAML reads an unquoted 2019-03-01 as a date
        if not isinstance(value, str | int | float):
            raise TypeError
        return str(value)
    if target is Path:
        if not isinstance(value, str | Path):
            raise TypeError
        return Path(value).expanduser()
    return target(value)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _section_type(hint: Any) -> type | None:
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


# ------------------------------------------------------------------------------------------------ checks
def validate_config(config: Any) -> None:
    """Check every field's choices and bounds and the class's ``problems()``; raise once with all of them."""
    problems = list(config_problems(config))
    if problems:
        raise ThemisInputError(f"invalid {_title(type(config))}:\n  " + "\n  ".join(problems))


def check_section(config: Any, where: str) -> None:
    """For a section's ``__post_init__``: raise its problems when it is built, each named by its YAML key.

    ``where`` is the section's own key (``dedup.minhash``). One line, so a loader that collects the errors of
    several sections lists each as one problem.
    """
    problems = list(config_problems(config, where=where))
    if problems:
        raise ThemisInputError("; ".join(problems))


def config_problems(config: Any, *, where: str | None = None) -> Iterator[str]:
    """One line per problem, each naming the flag (the YAML key is the same name in its section).

    With ``where`` (a section checked on its own), each field is named by its YAML key under ``where`` instead.
    Fields of a section that is ``None`` (it failed to build, and said why) are skipped.
    """
    flags = flag_names(type(config))
    for leaf in config_leaves(type(config)):
        value = _get(config, leaf.path)
        if value is _ABSENT:
            continue
        flag = "--" + flags.get(leaf.path, leaf.name.replace("_", "-"))
        if where is not None:
            flag = ".".join(part for part in (where, leaf.yaml_key) if part)
        meta = leaf.spec.metadata
        if value is None:
            if meta.get("required"):
                hint = "" if where is not None else f" (or '{leaf.yaml_key}:' in the config YAML)"
                yield f"{flag} is required{hint}"
            continue
        choices = meta.get("choices")
        for item in value if isinstance(value, tuple | list) and choices else (value,):
            if choices and item not in choices:
                yield f"{flag} must be one of {', '.join(map(str, choices))}, got {item!r}"
        bounds = meta.get("bounds") or {}
        if isinstance(value, int | float) and not isinstance(value, bool):
            for op, limit in bounds.items():
                if limit is not None and not _within(op, value, limit):
                    yield f"{flag} must be {_SYMBOL[op]} {limit}, got {value}"
    yield from _section_problems(config)


_SYMBOL = {"gt": ">", "ge": ">=", "lt": "<"}


def _within(op: str, value: float, limit: float) -> bool:
    return {"gt": value > limit, "ge": value >= limit, "lt": value < limit}[op]


def _section_problems(config: Any) -> Iterator[str]:
    """Cross-field checks: each config (and section) may define ``problems() -> Iterable[str]``."""
    for spec in dataclasses.fields(config):
        inner = getattr(config, spec.name)
        if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
            yield from _section_problems(inner)
    hook = getattr(config, "problems", None)
    if callable(hook):
        yield from hook()


_ABSENT = object()  # a field under a section that is None


def _get(config: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if config is None:
            return _ABSENT
        config = getattr(config, part)
    return config


def _title(cls: type) -> str:
    """``"Training config: ..."`` -> ``"training config"``: what "invalid ..." messages call the config."""
    title = (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip(".").split(":")[0].strip()
    return title[:1].lower() + title[1:]


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready nested dict of the resolved config (``run.json``); secrets are left out."""
    out: dict[str, Any] = {}
    for spec in dataclasses.fields(config):
        if spec.metadata.get("secret"):
            continue
        value = getattr(config, spec.name)
        out[spec.name] = config_to_dict(value) if dataclasses.is_dataclass(value) else _jsonable(value)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
