"""Typer options generated from a config dataclass: one ``--flag`` per field, help and default from the field.

:func:`config_command` turns ``(ConfigClass, run)`` into a typer command whose options are the config's fields
(named like them, see :func:`themis_rm.config.flag_names`) plus ``--config run.yaml``. Every option defaults to
``None`` = "not given", so the YAML and the environment fill what the command line leaves out; the help shows the
field's real default. Deprecated spellings are hidden options that still work and warn once.
"""

from __future__ import annotations

import functools
import inspect
import logging
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from themis_rm.config import Leaf, config_leaves, flag_names, load_config
from themis_rm.errors import ThemisInputError

logger = logging.getLogger(__name__)
CONFIG_HELP = "YAML with any of these settings (sections as mappings); flags given here override it."


def config_command(
    cls: type,
    run: Callable[[Any], None],
    *,
    help: str | None = None,
    env_prefix: str | None = None,
    on_error: Callable[[Exception], None] | None = None,
    group: bool = False,
    recipes: Path | None = None,
) -> Callable[..., None]:
    """A typer command for ``cls``: parse flags (+ ``--config``), build and validate the config, call ``run``.

    Args:
        run: called with the validated config.
        help: the command's help (default: ``run``'s docstring).
        env_prefix: also read ``<prefix><FIELD>`` environment variables (between the YAML and the flags).
        on_error: called with an error of the config or the run instead of raising it (the CLI prints ours and
            exits 2).
        group: the callback of a typer group (``themis bench`` with its ``summarize`` subcommand): does nothing
            when a subcommand is invoked.
        recipes: a directory of shipped ``<name>.yaml`` recipes: ``--config pm`` names one when no such file exists.
    """
    flags = flag_names(cls)
    leaves = [leaf for leaf in config_leaves(cls) if leaf.path in flags]
    leaves.sort(key=lambda leaf: not leaf.spec.metadata.get("required"))  # what a run needs first in --help
    params = [_context_param()] if group else []
    params.append(_config_param())
    aliases: dict[str, tuple[str, str]] = {}  # parameter -> (flag it stands for, deprecated spelling)
    for leaf in leaves:
        name = flags[leaf.path].replace("-", "_")
        params.append(_param(name, leaf, flags[leaf.path]))
        for index, old in enumerate(leaf.spec.metadata.get("deprecated", ())):
            alias = f"{name}__deprecated_{index}"
            aliases[alias] = (name, old)
            params.append(_deprecated_param(alias, leaf, old))

    def command(**given: Any) -> None:
        ctx = given.pop("ctx", None)
        if ctx is not None and ctx.invoked_subcommand is not None:
            return
        config_path = given.pop("config", None)
        for alias, (name, old) in aliases.items():
            value = given.pop(alias, None)
            if value is not None:
                logger.warning("%s is deprecated; use --%s", old, name.replace("_", "-"))
                given[name] = value if given.get(name) is None else given[name]
        try:
            config_path = resolve_recipe(config_path, recipes)
            run(load_config(cls, config_path, given, env_prefix=env_prefix))
        except Exception as exc:
            if on_error is None:
                raise
            on_error(exc)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = help or run.__doc__
    command.__name__ = getattr(run, "__name__", "command")
    return functools.wraps(run, assigned=("__module__", "__qualname__"), updated=())(command)


def resolve_recipe(path: Path | None, recipes: Path | None) -> Path | None:
    """``--config`` as given when it is a file; else a shipped recipe of that name (``pm`` -> ``recipes/pm.yaml``).

    Raises:
        ThemisInputError: neither exists; the message lists the shipped recipes.
    """
    if path is None or path.is_file() or recipes is None:
        return path
    shipped = recipes / f"{path.name.removesuffix('.yaml')}.yaml"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in recipes.glob("*.yaml")))
    raise ThemisInputError(f"--config {path}: no such file, and no shipped recipe of that name (shipped: {names})")


def _context_param() -> inspect.Parameter:
    return inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)


def _config_param() -> inspect.Parameter:
    option = typer.Option(None, "--config", help=CONFIG_HELP, show_default=False)
    return inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Path | None)


def _param(name: str, leaf: Leaf, flag: str) -> inspect.Parameter:
    kind = _option_type(leaf.hint)
    decls = (f"--{flag}/--no-{flag}",) if kind is bool else (f"--{flag}",)
    decls += tuple(leaf.spec.metadata.get("flags", ()))
    if leaf.spec.metadata.get("argument"):  # positional: `themis data mine REPOS...`
        option = typer.Argument(None, help=_help_with_default(leaf), show_default=False)
    else:
        option = typer.Option(None, *decls, help=_help_with_default(leaf), show_default=False)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind | None)


def _deprecated_param(alias: str, leaf: Leaf, old: str) -> inspect.Parameter:
    kind = _option_type(leaf.hint)
    option = typer.Option(None, old, hidden=True, help="Deprecated spelling of the option above.")
    return inspect.Parameter(alias, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind | None)


def _option_type(hint: Any) -> Any:
    """The click-facing type: Optional unwrapped, tuples/lists become repeatable ``list[str]`` (each value may be
    a comma list, ``--k 1,5``; the config converts the items, so ``--k 1 --k 5`` and ``--k 1,5`` agree)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(t for t in typing.get_args(hint) if t is not type(None))
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        return list[str]
    if hint in (bool, int, float, str, Path):
        return hint
    return str


def _help_with_default(leaf: Leaf) -> str:
    text = escape(leaf.help)  # typer renders help as rich markup: keep "[[criteria]]" literal
    if leaf.spec.metadata.get("secret"):
        return text
    default = leaf.default
    if default is None or default == () or default == []:
        return text
    if isinstance(default, tuple | list):
        default = ",".join(map(str, default))
    elif isinstance(default, bool):
        default = "on" if default else "off"
    return f"{text} (default: {default})"
