"""Jinja2 templates for the LLM stages, the aspect guidance they show, and tolerant parsers of the answers.

The templates are ours (``resources/templates/*.j2``); ``templates_dir`` points at a directory with files of the
same names to replace any of them. Rendering uses ``StrictUndefined``, so a template naming a variable the stage
does not provide fails at once instead of sending an empty hole to the model.

Parsers read the *last* tagged block, case-insensitively, after any ``</think>`` (a reasoning model's drafts are
not its answer), fall back to a looser form ("Verdict: B"), and report which form they used; the reference read
the first ``[JUDGEMENT]`` and required an exact, case-sensitive ``A``/``B``/``TIE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from themis_rm.criteria import (
    FUNCTIONAL_CORRECTNESS,
    MEMORY_EFFICIENCY,
    READABILITY_MAINTAINABILITY,
    RUNTIME_EFFICIENCY,
    SECURITY_HARDNESS,
)
from themis_rm.errors import MissingExtraError, ThemisInputError

TEMPLATE_NAMES = ("commit_review", "instruction", "problem_recovery", "bug_introduction", "pairwise_judge")

ASPECT_GUIDES: dict[str, tuple[str, str]] = {
    FUNCTIONAL_CORRECTNESS: (
        "Functional Correctness",
        "does the code do what is asked, including edge cases, errors and the exact output expected?",
    ),
    RUNTIME_EFFICIENCY: (
        "Runtime Efficiency",
        "algorithmic complexity, avoidable work, suitable data structures, and speed on realistic inputs.",
    ),
    MEMORY_EFFICIENCY: (
        "Memory Efficiency",
        "peak and total memory use, avoidable copies and allocations, leaks, and behaviour under memory limits.",
    ),
    SECURITY_HARDNESS: (
        "Security Hardness",
        "validation of untrusted input, safe handling of secrets, and resistance to injection, overflow and "
        "misuse of the code's interfaces.",
    ),
    READABILITY_MAINTAINABILITY: (
        "Readability and Maintainability",
        "clear structure and names, no duplication, sensible decomposition, and code a teammate can change safely.",
    ),
}

INSTRUCTION_STYLES: dict[str, str] = {
    "task": "a direct task description, as in a programming exercise",
    "feature_request": "a feature request or change request from a product owner or teammate",
    "bug_report": "a bug report describing the wrong or undesired behaviour and what is expected instead",
    "user_question": "a question a developer might ask an assistant, in the first person",
    "code_review": "a code-review comment asking for a specific improvement",
}

_FENCES = {"CSharp": "csharp", "Cpp": "cpp"}


def fence_tag(language: str | None) -> str:
    """Code-fence language tag: ``Cpp`` -> ``cpp``, ``CSharp`` -> ``csharp``, ``Python`` -> ``python``."""
    return _FENCES.get(language or "", (language or "text").lower())


def aspect_context(aspect: str) -> dict[str, str]:
    title, guide = ASPECT_GUIDES.get(aspect, (aspect.replace("_", " "), "the quality named by this aspect."))
    return {"aspect": aspect, "aspect_title": title, "aspect_guide": guide}


class TemplateSet:
    """The five stage templates, from the package or an override directory."""

    def __init__(self, templates_dir: str | None = None) -> None:
        try:
            import jinja2
        except ImportError as exc:
            raise MissingExtraError("jinja2", "data") from exc
        loaders = [jinja2.PackageLoader("themis_rm.data", "resources/templates")]
        if templates_dir:
            if not Path(templates_dir).is_dir():
                raise ThemisInputError(f"llm.templates_dir {templates_dir} is not a directory")
            loaders.insert(0, jinja2.FileSystemLoader(templates_dir))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self._jinja = jinja2

    def render(self, name: str, **variables) -> str:
        try:
            return self._env.get_template(f"{name}.j2").render(**variables).strip()
        except self._jinja.TemplateError as exc:
            raise ThemisInputError(f"template {name}.j2 cannot be rendered: {exc}") from exc


# ------------------------------------------------------------------------------------------------- parsers
@dataclass(frozen=True)
class Parsed:
    """A parsed value and how it was found: ``tag``, ``unclosed`` (opening tag only), ``loose`` or ``failed``."""

    value: str | None
    mode: str


def _answer(text: str) -> str:
    return text.rsplit("</think>", 1)[-1]


def parse_tag(text: str, tag: str) -> Parsed:
    """Content of the last ``[TAG]...[/TAG]`` (case-insensitive); an unclosed last tag takes the rest."""
    answer = _answer(text)
    closed = re.findall(rf"\[{tag}\](.*?)\[/{tag}\]", answer, flags=re.IGNORECASE | re.DOTALL)
    if closed:
        return Parsed(closed[-1].strip(), "tag")
    opened = re.split(rf"\[{tag}\]", answer, flags=re.IGNORECASE)
    if len(opened) > 1 and opened[-1].strip():
        return Parsed(opened[-1].strip(), "unclosed")
    return Parsed(None, "failed")


def parse_rating(text: str, low: int = 1, high: int = 5) -> Parsed:
    """An integer rating in [low, high] from ``[RATING]N[/RATING]`` or a loose ``Rating: N``."""
    tagged = parse_tag(text, "RATING")
    candidates = [(tagged.value, tagged.mode)] if tagged.value else []
    loose = re.findall(r"rating\s*[:=]\s*\**\s*(\d+)", _answer(text), flags=re.IGNORECASE)
    if loose:
        candidates.append((loose[-1], "loose"))
    for value, mode in candidates:
        digits = re.search(r"\d+", value)
        if digits and low <= int(digits.group()) <= high:
            return Parsed(digits.group(), mode)
    return Parsed(None, "failed")


_VERDICTS = {"A": "A", "B": "B", "TIE": "TIE", "RESPONSE A": "A", "RESPONSE B": "B", "EQUAL": "TIE", "DRAW": "TIE"}
_LOOSE_VERDICT = re.compile(
    r"(?:judge?ment|verdict|final answer|winner|better response)\s*(?:is)?\s*[:\-]?\s*[*_`\"']*\s*"
    r"(response\s+a|response\s+b|a|b|tie|equal|draw)\b",
    re.IGNORECASE,
)


def parse_verdict(text: str) -> Parsed:
    """``A``, ``B`` or ``TIE`` from the last ``[JUDGEMENT]`` block, else from "Verdict: B"-like phrases."""
    tagged = parse_tag(text, "JUDGEMENT")
    if tagged.value is not None:
        word = " ".join(re.sub(r"[^A-Za-z ]", " ", tagged.value).upper().split())
        if word in _VERDICTS:
            return Parsed(_VERDICTS[word], tagged.mode)
    loose = _LOOSE_VERDICT.findall(_answer(text))
    if loose:
        return Parsed(_VERDICTS[" ".join(loose[-1].upper().split())], "loose")
    return Parsed(None, "failed")


def strip_fence(code: str) -> str:
    """Code without a surrounding Markdown fence (```lang ... ```)."""
    match = re.fullmatch(r"\s*```[^\n]*\n(.*?)\n?```\s*", code, flags=re.DOTALL)
    return match.group(1) if match else code.strip("\n")
