"""A small lexer and line layout for code responses: where strings and comments are, where a line may go.

Limits: it knows comments, ordinary/raw/triple-quoted strings, JS template literals, C# verbatim strings and Ruby
heredocs; it does not know regex literals, C++ raw strings or Ruby ``%q{}``, so a snippet using them may get a
comment or blank line inside such a literal.
"""

from __future__ import annotations

import ast
import bisect
import functools
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from themis_rm.data.languages import CRB_LANGUAGES as LANGUAGES

_HASH_COMMENTS = frozenset({"Python", "Ruby"})
_TRIPLE_QUOTES = frozenset({"Python", "Java", "CSharp"})


@dataclass(frozen=True)
class Source:
    """A response split into lines, with its string/comment spans and where a line may be inserted."""

    nl: str
    lines: list[str]
    spans: list[tuple[int, int, str]]
    """(start, end, "s" for a string or "c" for a comment), in order."""
    safe: list[bool]
    """``safe[i]``: a line may go before line ``i`` (``i == len(lines)``: at the end), outside any literal,
    comment or backslash continuation."""


def analyse(code: str, language: str) -> Source:
    """Splits ``code`` into lines (keeping its line ending) and marks where a new line cannot go."""
    nl = "\r\n" if "\r\n" in code else "\n"
    lines = code.split(nl)
    spans = scan(code, language)
    starts = [s for s, _, _ in spans]
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + len(nl))
    offsets[-1] = len(code)  # the end: a literal running to the end of the text counts as open
    safe = [True]
    for i in range(1, len(lines) + 1):
        k = bisect.bisect_left(starts, offsets[i]) - 1
        inside = k >= 0 and spans[k][1] >= offsets[i]
        safe.append(not inside and not lines[i - 1].rstrip().endswith("\\"))
    return Source(nl, lines, spans, safe)


def scan(code: str, language: str) -> list[tuple[int, int, str]]:
    """String and comment spans by a small lexer that jumps from opener to opener (see the module limits)."""
    spans: list[tuple[int, int, str]] = []
    opener, i, heredoc = _OPENERS[language], 0, None
    while True:
        match = opener.search(code, i)
        if heredoc is not None and (match is None or match.start() > heredoc[0]):
            i, heredoc = heredoc[1], None  # the opener line is done: skip the heredoc body
            continue
        if match is None:
            return sorted(spans)
        token, at = match.group(), match.start()
        if token in ("#", "//"):
            end, kind = _find(code, "\n", at), "c"
        elif token == "/*":
            end, kind = min(_find(code, "*/", at + 2) + 2, len(code)), "c"
        elif token == "=begin":
            close = code.find("\n=end", at)
            end, kind = len(code) if close < 0 else _find(code, "\n", close + 1), "c"
        elif token.startswith("<<"):
            line_end = _find(code, "\n", at)
            term = re.compile(rf"^[ \t]*{match.group(1)}[ \t]*\r?$", re.MULTILINE).search(code, line_end + 1)
            heredoc = (line_end, term.end() if term else len(code))
            spans.append((*heredoc, "s"))
            i = match.end()
            continue
        else:
            end, kind = _string_end(code, at, token, language), "s"
        spans.append((at, end, kind))
        i = max(end, at + 1)


def _openers(language: str) -> re.Pattern[str]:
    """Where a comment or literal can start: the lexer jumps between these."""
    parts = ["#"] if language in _HASH_COMMENTS else ["//", r"/\*"]
    if language == "Ruby":
        parts += ["^=begin", r"<<[~-]?['\"]?([A-Z_]\w*)"]
    if language in _TRIPLE_QUOTES:
        parts += ['"""', "'''"]
    parts.append("[\"'`]" if language in ("Go", "JavaScript", "Ruby") else "[\"']")
    return re.compile("|".join(parts), re.MULTILINE)


_OPENERS = {language: _openers(language) for language in LANGUAGES}


def _find(code: str, needle: str, start: int) -> int:
    found = code.find(needle, start)
    return len(code) if found < 0 else found


def _string_end(code: str, at: int, quote: str, language: str) -> int:
    raw = (language == "Go" and quote == "`") or (language == "CSharp" and "@" in code[max(at - 2, 0) : at])
    multiline = raw or quote == "`" or len(quote) == 3 or language == "Ruby"
    return _string_body(quote, raw, multiline).match(code, at + len(quote)).end()


@functools.cache
def _string_body(quote: str, raw: bool, multiline: bool) -> re.Pattern[str]:
    """The rest of a literal after its opening quote: to the closing quote, else the line end (if it cannot
    span lines) or the text end."""
    q = re.escape(quote)
    if len(quote) == 3:
        return re.compile(rf"(?:\\.|.)*?(?:{q}|\Z)", re.DOTALL)
    if raw:
        return re.compile(rf"[^{q}]*(?:{q}|\Z)")
    if multiline:
        return re.compile(rf"(?:[^{q}\\]|\\.)*(?:{q}|\Z)", re.DOTALL)
    return re.compile(rf"(?:[^{q}\\\n]|\\.)*{q}?", re.DOTALL)


def indent_of(line: str) -> str:
    """The leading whitespace of ``line``, so an inserted line lines up with its neighbour."""
    return line[: len(line) - len(line.lstrip())]


def insert_lines(src: Source, index: int, new_lines: Sequence[str]) -> str:
    """The text with ``new_lines`` put before line ``index``, joined with the response's own line ending."""
    lines = list(src.lines)
    lines[index:index] = new_lines
    return src.nl.join(lines)


def comment_lines(texts: Sequence[str], language: str, indent: str) -> list[str]:
    """``texts`` as line comments of ``language`` (``#`` or ``//``); an empty text gives a bare marker."""
    marker = "#" if language in _HASH_COMMENTS else "//"
    return [f"{indent}{marker} {text}" if text else f"{indent}{marker}" for text in texts]


_DEFINITIONS = {
    "Python": r"[ \t]*(?:@|async[ \t]+def\b|def\b|class\b)",
    "Ruby": r"[ \t]*(?:def|class|module)\b",
    "Go": r"[ \t]*func\b",
    "JavaScript": r"[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:async[ \t]+)?(?:function\b|class\b|"
    r"(?:const|let|var)[ \t]+\w+[ \t]*=[ \t]*(?:async[ \t]*)?(?:function\b|\([^)]*\)[ \t]*=>|\w+[ \t]*=>))",
}
_C_DEFINITION = (
    r"[ \t]*(?:@[A-Za-z]\w*|\[[A-Z][^\]]*\][ \t]*$|(?:[\w \t]*[ \t])?(?:class|struct|interface|enum|namespace)[ \t]+"
    r"\w+[^;]*$|(?!(?:if|for|while|switch|return|else|do|case|catch|sizeof|new|delete|throw|goto|using|lock|"
    r"foreach)\b)[A-Za-z_][\w:<>,*&\[\] \t~]*[ \t*&]~?[A-Za-z_][\w:]*[ \t]*\([^;]*$)"
)


def find_anchor(src: Source, language: str) -> int:
    """The first line opening a definition (decorators included), else the first code line; 0 when none."""
    pattern = re.compile(_DEFINITIONS.get(language, _C_DEFINITION))
    candidates = [i for i, line in enumerate(src.lines) if src.safe[i] and line.strip()]
    return next((i for i in candidates if pattern.match(src.lines[i])), candidates[0] if candidates else 0)


def compiles(code: str) -> bool:
    """Whether Python accepts ``code``; its warnings (``is`` with a literal, bad escapes) are not ours to show."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(code, "<response>", "exec")
        except (SyntaxError, ValueError):
            return False
    return True


def parse_python(code: str) -> ast.Module | None:
    """The module tree of ``code``, or None when it does not parse (warnings hidden, as in :func:`compiles`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(code)
        except (SyntaxError, ValueError):
            return None
