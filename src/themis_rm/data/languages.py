"""File extension -> language, in CodeRewardBench's language names.

The reference map (``programming_languages_ext_map.json``) misses C++ headers (``.hpp``/``.hh``), ``.tsx``, ``.jsx``,
``.mjs``/``.cjs``, ``.pyi`` and upper-case ``.R``, and names C++/C# differently from the benchmark. Here the eight
CodeRewardBench languages use the benchmark's spelling (``Cpp``, ``CSharp``), matching is case-insensitive, and the
authors' JSON can still be loaded with :func:`load_extension_map` (its names are translated).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from themis_rm.errors import ThemisInputError

CRB_LANGUAGES: tuple[str, ...] = ("C", "CSharp", "Cpp", "Go", "Java", "JavaScript", "Python", "Ruby")

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "C": (".c", ".h"),
    "CSharp": (".cs",),
    "Cpp": (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp"),
    "Go": (".go",),
    "Java": (".java",),
    "JavaScript": (".js", ".jsx", ".mjs", ".cjs"),
    "Python": (".py", ".pyi"),
    "Ruby": (".rb",),
    "TypeScript": (".ts", ".tsx", ".mts", ".cts"),
    "Rust": (".rs",),
    "Kotlin": (".kt", ".kts"),
    "PHP": (".php",),
    "Scala": (".scala",),
    "Swift": (".swift",),
    "Shell": (".sh", ".bash"),
    "R": (".r",),
}

# The reference JSON's language names that differ from ours.
_REFERENCE_NAMES = {"C++": "Cpp", "C#": "CSharp"}


class LanguageMap:
    """Case-insensitive extension lookup restricted to the languages a run targets."""

    def __init__(self, extensions: Mapping[str, Iterable[str]], languages: Iterable[str] | None = None) -> None:
        wanted = set(languages) if languages is not None else set(extensions)
        unknown = sorted(wanted - set(extensions))
        if unknown:
            raise ThemisInputError(
                f"languages {unknown} have no extensions; known languages: {', '.join(sorted(extensions))} "
                "(add extensions with an extension map)"
            )
        self.languages = tuple(sorted(wanted))
        self._by_ext: dict[str, str] = {}
        for language in self.languages:
            for ext in extensions[language]:
                ext = ext.lower()
                if ext in self._by_ext and self._by_ext[ext] != language:
                    raise ThemisInputError(f"extension {ext!r} is mapped to both {self._by_ext[ext]} and {language}")
                self._by_ext[ext] = language

    def language_of(self, path: str) -> str | None:
        """The language of a repository path (``src/a.HPP`` -> ``Cpp``), None when it is not targeted."""
        return self._by_ext.get(PurePosixPath(path).suffix.lower())


def default_language_map(languages: Iterable[str] | None = None) -> LanguageMap:
    """Our extension table for ``languages`` (default: the eight CodeRewardBench languages)."""
    return LanguageMap(EXTENSIONS, CRB_LANGUAGES if languages is None else languages)


def load_extension_map(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read a ``{"Language": [".ext", ...]}`` JSON file (the reference layout); C++/C# become Cpp/CSharp."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ThemisInputError(f"{path}: cannot read the extension map ({exc})") from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(e, str) and e.startswith(".") for e in v) for v in data.values()
    ):
        raise ThemisInputError(f'{path}: expected {{"Language": [".ext", ...]}}')
    return {_REFERENCE_NAMES.get(name, name): tuple(exts) for name, exts in data.items()}
