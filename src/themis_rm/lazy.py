"""Package exports imported on first use, so light entry points (``themis --help``, configs) skip torch and pandas.

Each package ``__init__`` names its public API once::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"Scorer": "themis_rm.scoring.scorer", ...})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``: ``name -> module`` resolved on first access (PEP 562)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)
