"""Reading a YAML mapping (``--config`` files, pipeline configs): one place for the errors and the shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from themis_rm.errors import ThemisInputError


def read_yaml_mapping(path: Path, *, what: str, where: str) -> dict[str, Any]:
    """The top-level mapping of the YAML file at ``path`` (empty file: ``{}``).

    Args:
        what: what the file is, for errors ("the recipe YAML").
        where: how errors name the file (``"--config recipe.yaml"``).

    Raises:
        ThemisInputError: unreadable, not YAML, or not a mapping.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ThemisInputError(f"{where}: cannot read {what} ({exc})") from exc
    if not isinstance(data, dict):
        raise ThemisInputError(f"{where}: {what} must be a mapping of keys to values")
    return data
