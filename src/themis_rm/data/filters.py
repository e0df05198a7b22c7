"""Record filters: commit-message rules, repository and licence allowlists, token length.

Each is a datatrove ``BaseFilter``: ``filter`` returns True to keep, or ``(False, reason)`` to drop, and datatrove
counts ``dropped_<reason>``. AST depth lives in :mod:`themis_rm.data.syntax`.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from themis_rm.data.base import BaseFilter
from themis_rm.data.config import FilterConfig, MessageRules, TokenLimits
from themis_rm.errors import ThemisInputError

_TRAILING = re.compile(r"[\s.!:;,]+$")


class Blocklist:
    """Low-signal subjects: exact phrases and whole-subject regexes, matched after normalisation."""

    def __init__(self, lines: list[str], source: str) -> None:
        self.phrases: set[str] = set()
        patterns = []
        for line_no, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("re:"):
                try:
                    patterns.append(re.compile(line[3:]))
                except re.error as exc:
                    raise ThemisInputError(f"{source}:{line_no}: bad regular expression ({exc})") from exc
            else:
                self.phrases.add(normalize_subject(line))
        self.patterns = tuple(patterns)

    @classmethod
    def load(cls, path: str | None = None) -> Blocklist:
        """From ``path``, or the package's default list."""
        if path is None:
            text = (resources.files("themis_rm.data.resources") / "message_blocklist.txt").read_text("utf-8")
            return cls(text.splitlines(), "message_blocklist.txt")
        try:
            return cls(Path(path).read_text(encoding="utf-8").splitlines(), path)
        except OSError as exc:
            raise ThemisInputError(f"filters.message.blocklist {path}: cannot read ({exc})") from exc

    def blocks(self, message: str) -> bool:
        subject = normalize_subject(message.split("\n", 1)[0])
        return subject in self.phrases or any(p.fullmatch(subject) for p in self.patterns)


def normalize_subject(text: str) -> str:
    """Lower-case, whitespace collapsed, trailing punctuation removed: ``"Fix typo."`` -> ``"fix typo"``."""
    return _TRAILING.sub("", " ".join(text.lower().split()))


class CommitMessageFilter(BaseFilter):
    """Drops messages outside the length window (``message_length``) or with a blocklisted subject."""

    name = "message"

    def __init__(self, rules: MessageRules | None = None) -> None:
        super().__init__()
        self.rules = rules or MessageRules()
        self.blocklist = Blocklist.load(self.rules.blocklist)

    def filter(self, doc) -> bool | tuple[bool, str]:
        message = doc.metadata.get("message") or ""
        if not self.rules.min_chars < len(message) < self.rules.max_chars:
            return False, "message_length"
        if self.blocklist.blocks(message):
            return False, "message_blocklist"
        return True


class RepoAllowlistFilter(BaseFilter):
    """Keeps records whose repository (``owner/name``, case-insensitive) is in one of the JSON allowlists."""

    name = "repo_allowlist"

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self.allowed: set[str] = set()
        for path in paths:
            try:
                names = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ThemisInputError(f"filters.repo_allowlist {path}: cannot read JSON ({exc})") from exc
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ThemisInputError(f'filters.repo_allowlist {path}: expected a JSON list like ["owner/repo"]')
            self.allowed.update(n.lower() for n in names)

    def filter(self, doc) -> bool | tuple[bool, str]:
        return (doc.metadata.get("repo") or "").lower() in self.allowed or (False, "repo_allowlist")


class LicenseAllowlistFilter(BaseFilter):
    """Keeps records with an allowed licence; an unknown licence is kept (and counted) unless ``drop_unknown``."""

    name = "license_allowlist"

    def __init__(self, licenses: list[str], drop_unknown: bool = False) -> None:
        super().__init__()
        self.allowed = {name.lower() for name in licenses}
        self.drop_unknown = drop_unknown

    def filter(self, doc) -> bool | tuple[bool, str]:
        license_name = doc.metadata.get("license")
        if not license_name:
            self.stat_update("license_unknown")
            return (False, "license_unknown") if self.drop_unknown else True
        return license_name.lower() in self.allowed or (False, "license")


class TokenLengthFilter(BaseFilter):
    """Drops records whose old or new file has too few (``too_few_tokens``) or too many (``too_many_tokens``) tokens."""

    name = "token_length"

    def __init__(self, limits: TokenLimits) -> None:
        super().__init__()
        self.limits = limits
        self._tokenizer = None

    def filter(self, doc) -> bool | tuple[bool, str]:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.limits.tokenizer)
        for text in (doc.metadata.get("old_contents") or "", doc.text):
            n = len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
            if n < self.limits.min_tokens:
                return False, "too_few_tokens"
            if n > self.limits.max_tokens:
                return False, "too_many_tokens"
        return True


def load_tokenizer(name: str):
    """A fast HF tokenizer, loaded inside the worker that uses it (tokenizers are not shipped between processes)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as exc:
        raise ThemisInputError(f"tokenizer {name!r} cannot be loaded ({exc}); give a local path") from exc


def build_filters(config: FilterConfig) -> list:
    """The record filters after the message rules, in pipeline order (repository, licence, tokens, AST depth).

    The message filter is not here: it belongs to the mining steps (:func:`themis_rm.data.pipeline.mine_steps`), so
    ``themis data mine`` and ``themis data run`` apply the same rules through one code path.
    """
    from themis_rm.data.syntax import AstDepthFilter

    steps: list = []
    if config.repo_allowlist:
        steps.append(RepoAllowlistFilter(config.repo_allowlist))
    if config.license_allowlist:
        steps.append(LicenseAllowlistFilter(config.license_allowlist, config.drop_unknown_license))
    if config.token_length.tokenizer:
        steps.append(TokenLengthFilter(config.token_length))
    if config.min_ast_depth > 0:
        steps.append(AstDepthFilter(config.min_ast_depth))
    return steps
