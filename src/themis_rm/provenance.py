"""What produced an output, for ``run.json`` and settings files: the installed versions of the packages that matter.

One place for every job (score, bench, rerank, judge, train) so their records agree and no job keeps its own copy of
the version lookup. Standard library only: importing it costs nothing, whichever extra is installed.

    package_versions(("themis-rm", "not-installed"))  # {"themis_rm": "0.1.0"}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

VERSIONED_PACKAGES = (
    "themis-rm",
    "transformers",
    "torch",
    "tokenizers",
    "accelerate",
    "numpy",
    "pandas",
    "pyarrow",
    "datasets",
)
"""numpy/torch/transformers/tokenizers/accelerate decide the numbers, pandas and pyarrow the parquet layout,
datasets the hub reads."""


def package_version(package: str) -> str | None:
    """The installed version of ``package`` (distribution name, e.g. ``themis-rm``), or None when it is absent."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def package_versions(packages: Iterable[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Versions of the installed ``packages``, keyed ``themis_rm``, ``torch``, ... (``-`` becomes ``_``).

    A package that is not installed is left out rather than recorded as None, so the record lists what ran.
    """
    versions = {}
    for package in packages:
        version = package_version(package)
        if version is not None:
            versions[package.replace("-", "_")] = version
    return versions


def file_sha256(source: str | Path | None) -> str | None:
    """SHA-256 of a local file's bytes; None for anything else (a directory, a hub id, nothing)."""
    path = Path(source) if source is not None else None
    if path is None or not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def changed_settings(before: dict, now: dict) -> list[str]:
    """``"key before -> now"`` for every key whose value differs (either side may lack it), sorted by key: how a
    refused resume names what changed."""
    keys = sorted(set(before) | set(now))
    return [f"{key} {before.get(key)!r} -> {now.get(key)!r}" for key in keys if before.get(key) != now.get(key)]
