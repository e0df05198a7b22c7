"""Data shipped with the package: the bundled demo pairs and the ``open`` prompt pack's criteria."""

from __future__ import annotations

from importlib import resources

from themis_rm.pairs import PreferencePair, load_pairs


def demo_pairs() -> list[PreferencePair]:
    """The bundled sample pairs: two per criterion, eight languages, written for this package."""
    with resources.as_file(resources.files(__name__) / "demo_pairs.jsonl") as path:
        return load_pairs(path).rows
