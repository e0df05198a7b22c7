"""Reading a YAML mapping (training recipes, pipeline configs): one place for the extra, the errors and the shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from themis_rm.errors import MissingExtraError, ThemisInputError


def read_yaml_mapping(path: Path, *, what: str, where: str, extra: str) -> dict[str, Any]:
    """The top-level mapping of the YAML file at ``path`` (empty file: ``{}``).

    Args:
        what: what the file is, for errors ("the recipe YAML").
        where: how errors name the file (``"--config recipe.yaml"``).
        extra: the pip extra that brings pyyaml.

    Raises:
        MissingExtraError: pyyaml is not installed.
        ThemisInputError: unreadable, not YAML, or not a mapping.
    """
    try:
        import yaml
    except ImportError as exc:
        raise MissingExtraError("pyyaml", extra) from exc
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ThemisInputError(f"{where}: cannot read {what} ({exc})") from exc
    if not isinstance(data, dict):
        raise ThemisInputError(f"{where}: {what} must be a mapping of keys to values")
    return data
