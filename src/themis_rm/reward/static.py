"""Static analysis components: real analysers over candidate programs, never executing them.

Each analyser names what it measures; which tool measures it depends on the candidate's language:

=================  =====================  ===============================  =====================================
analyser           Python                 JavaScript                       C, C++
=================  =====================  ===============================  =====================================
``lint``           ruff                   ESLint (recommended + style)     clang-tidy (bugprone, performance,
                                                                           readability, misc)
``security``       bandit (severities)    eslint-plugin-security           clang-tidy (CERT, unsafe functions,
                                                                           static analyser security/memory)
``complexity``     radon (cyclomatic)     ESLint ``complexity``            clang-tidy (cognitive)
``maintainability``  radon MI             –                                –
``ruff``/``bandit``  the tool itself      –                                –
=================  =====================  ===============================  =====================================

A candidate in a language its analyser does not read gets no value (``None``, the reason in its evidence) and
contributes 0. A language it reads whose tool is missing fails :func:`check_analyzers` before anything runs,
naming the tool and how to install it; :func:`coverage` is what start-up logs and run records report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from themis_rm.errors import ThemisError
from themis_rm.reward.analyzers import clang_tidy, eslint, python
from themis_rm.reward.analyzers.base import StaticResult

__all__ = ["ANALYZERS", "StaticResult", "analyse", "check_analyzers", "coverage"]

Backend = Callable[[Sequence[str], str, "str | None"], list[StaticResult]]


@dataclass(frozen=True)
class Tool:
    name: str
    installed: Callable[[], bool]
    hint: Callable[[], str]


PIP_HINT = "pip install 'themis-rm[reward]'"
TOOLS = {
    "ruff": Tool("ruff", python.ruff_installed, lambda: f"ruff is not installed; {PIP_HINT}"),
    "bandit": Tool("bandit", python.bandit_installed, lambda: f"bandit is not installed; {PIP_HINT}"),
    "radon": Tool("radon", python.radon_installed, lambda: f"radon is not installed; {PIP_HINT}"),
    "eslint": Tool("eslint", eslint.installed, eslint.install_hint),
    "clang-tidy": Tool("clang-tidy", clang_tidy.installed, clang_tidy.install_hint),
}


def _c_family(backend: Backend) -> dict[str, tuple[str, Backend]]:
    return {"C": ("clang-tidy", backend), "Cpp": ("clang-tidy", backend)}


ANALYZERS: dict[str, dict[str, tuple[str, Backend]]] = {
    "lint": {"Python": ("ruff", python.ruff), "JavaScript": ("eslint", eslint.lint), **_c_family(clang_tidy.lint)},
    "security": {
        "Python": ("bandit", python.bandit),
        "JavaScript": ("eslint", eslint.security),
        **_c_family(clang_tidy.security),
    },
    "complexity": {
        "Python": ("radon", python.radon_complexity),
        "JavaScript": ("eslint", eslint.complexity),
        **_c_family(clang_tidy.complexity),
    },
    "maintainability": {"Python": ("radon", python.radon_maintainability)},
    "ruff": {"Python": ("ruff", python.ruff)},
    "bandit": {"Python": ("bandit", python.bandit)},
}
RULES_APPLY_TO = ("lint", "ruff")  # `rules` is ruff's selection: the other tools' rule sets are fixed


def coverage(names: Iterable[str]) -> dict[str, dict[str, str]]:
    """For each analyser, each language it reads: the tool that reads it here, or why it cannot."""
    report = {}
    for name in dict.fromkeys(names):
        report[name] = {
            language: tool if TOOLS[tool].installed() else f"unavailable: {TOOLS[tool].hint()}"
            for language, (tool, _) in ANALYZERS[name].items()
        }
    return report


def check_analyzers(names: Iterable[str], languages: Iterable[str] | None = None) -> None:
    """Raise, before anything runs, naming each missing tool and how to install it: every one a language in
    ``languages`` (the input's) needs; with no languages given, only when an analyser can read nothing here."""
    wanted = None if languages is None else set(languages)
    problems = []
    for name, by_language in coverage(names).items():
        missing = {lang: why for lang, why in by_language.items() if why.startswith("unavailable")}
        if wanted is None:
            if len(missing) == len(by_language):  # no language at all
                problems += [f"{name} ({lang}): {why.removeprefix('unavailable: ')}" for lang, why in missing.items()]
            continue
        problems += [
            f"{name} ({lang}): {why.removeprefix('unavailable: ')}" for lang, why in missing.items() if lang in wanted
        ]
    if problems:
        raise ThemisError("static analysers missing:\n  " + "\n  ".join(problems))


def analyse(analyzer: str, programs: Sequence[str], languages: Sequence[str], *, rules: str | None = None):
    """``analyzer``'s result for every program (same order); one tool run per language in the batch."""
    results: list[StaticResult | None] = [None] * len(programs)
    readers = ANALYZERS[analyzer]
    by_language: dict[str, list[int]] = {}
    for index, language in enumerate(languages):
        by_language.setdefault(language, []).append(index)
    for language, indices in by_language.items():
        if language not in readers:
            read = ", ".join(readers)
            results_for = [StaticResult(None, note=f"{analyzer} reads {read}, not {language}")] * len(indices)
        elif not TOOLS[(tool := readers[language][0])].installed():
            results_for = [StaticResult(None, note=f"{tool}: {TOOLS[tool].hint()}")] * len(indices)
        else:
            backend = readers[language][1]
            results_for = backend([programs[i] for i in indices], language, rules)
        for index, result in zip(indices, results_for, strict=True):
            results[index] = result
    return results
