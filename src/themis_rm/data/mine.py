"""Mining: single-file, in-place modification commits from local git repositories or a BigQuery-style export.

A commit becomes a record when it is not a merge, changes exactly one regular file, keeps its path (no rename, add,
delete or type change), falls in the date window, has a targeted extension, and both versions are text within the
size limits. Every commit that does not become a record bumps exactly one ``dropped_<reason>`` counter, so
``total == forwarded + sum(dropped_*)`` per repository. Message rules live in :mod:`themis_rm.data.filters`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from themis_rm.config import check_section, setting
from themis_rm.data.git import (
    CommitInfo,
    GitError,
    blob_at,
    check_git_version,
    commit_patches,
    count_merges,
    is_commit_id,
    iter_commits,
    origin_name,
    read_blobs,
    read_commit,
)
from themis_rm.data.languages import CRB_LANGUAGES, EXTENSIONS, LanguageMap, load_extension_map
from themis_rm.data.records import CommitRecord
from themis_rm.errors import ThemisInputError

logger = logging.getLogger(__name__)

Count = Callable[..., None]  # count(outcome, value=1): "forwarded" or a drop reason
_REGULAR_MODES = ("100644", "100755")
_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BATCH = 128  # commits whose blobs and patches are read with one git call each


@dataclass
class RepoSpec:
    """A local repository to mine: its path, its ``owner/name`` (for allowlists and splits) and licence if known."""

    path: str
    name: str | None = None
    license: str | None = None


@dataclass
class MineConfig:
    """What to mine and which commits qualify."""

    repos: list[str] = setting(default_factory=list, help="Local repository paths.", argument=True)
    repos_file: str | None = setting(
        None, "Text file listing repositories, one per line: path, optionally <TAB>owner/name<TAB>license."
    )
    bigquery: list[str] = setting(
        default_factory=list,
        help="BigQuery-style JSONL exports (commit, repos, old_file, new_file, message columns).",
    )
    clones_dir: str | None = setting(
        None, "Where the export's repositories are cloned, as <clones_dir>/<owner>/<name>."
    )
    rev: str = setting("HEAD", "Revision whose history is mined in local repositories.")
    since: str | None = setting(None, "Keep commits at or after this date (ISO, e.g. 2019-06-01; committer date, UTC).")
    until: str | None = setting(
        None, "Keep commits strictly before this date (e.g. 2019-03-01 for training data before the benchmark)."
    )
    languages: list[str] = setting(
        default_factory=lambda: list(CRB_LANGUAGES),
        help="Target languages (CodeRewardBench names: C, CSharp, Cpp, Go, Java, JavaScript, Python, Ruby, ...).",
    )
    extension_map: str | None = setting(
        None, 'JSON {"Language": [".ext"]} (the reference layout) merged over the built-in table.'
    )
    min_bytes: int = setting(1, "Smallest accepted size of either version of the file.", ge=0)
    max_bytes: int = setting(200_000, "Largest accepted size of either version of the file.")
    diff_context: int = setting(3, "Context lines of the unified diff.")

    def __post_init__(self) -> None:
        check_section(self, "mine")

    def problems(self) -> list[str]:
        """Dates that do not parse, a size window that is empty, an export without its clones."""
        problems = []
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                try:
                    _parse_date(value)
                except ValueError:
                    problems.append(f"mine.{name} must be an ISO date like 2019-03-01, got {value!r}")
        if self.max_bytes < self.min_bytes:
            problems.append(f"mine needs min_bytes <= max_bytes, got {self.min_bytes}, {self.max_bytes}")
        if self.bigquery and not self.clones_dir:
            problems.append("mine.bigquery needs mine.clones_dir (contents are read from local clones)")
        return problems

    def language_map(self) -> LanguageMap:
        table = dict(EXTENSIONS)
        if self.extension_map:
            table.update(load_extension_map(self.extension_map))
        return LanguageMap(table, self.languages)

    def window(self) -> tuple[int | None, int | None]:
        """(since, until) as unix times."""
        return (
            int(_parse_date(self.since).timestamp()) if self.since else None,
            int(_parse_date(self.until).timestamp()) if self.until else None,
        )

    def repo_specs(self) -> list[RepoSpec]:
        """Every repository from ``repos`` and ``repos_file``, de-duplicated, in a stable order."""
        specs = [RepoSpec(path) for path in self.repos]
        if self.repos_file:
            specs += _read_repos_file(Path(self.repos_file))
        unique = {str(Path(s.path).resolve()): s for s in specs}
        return [unique[key] for key in sorted(unique)]


class CommitMiner:
    """Turns commits into :class:`CommitRecord` s, counting every commit it does not keep by reason."""

    def __init__(self, config: MineConfig, count: Count) -> None:
        check_git_version()
        self.config = config
        self.count = count
        self.languages = config.language_map()
        self.since, self.until = config.window()

    # ------------------------------------------------------------------------------------------ local repos
    def mine_repository(self, spec: RepoSpec) -> Iterator[CommitRecord]:
        """Records of one local repository, newest commit first, read as ``git log`` streams them."""
        repo = spec.path
        name = spec.name or origin_name(repo) or Path(repo).resolve().name
        merges = count_merges(repo, self.config.rev)
        if merges:
            self.count("merge", merges)
        batch: list[CommitInfo] = []
        for commit in iter_commits(repo, self.config.rev):
            reason = self._commit_problem(commit.parents, commit.unix_time, commit.changes)
            if reason:
                self.count(reason)
                continue
            batch.append(commit)
            if len(batch) == _BATCH:
                yield from self._mine_batch(repo, name, spec.license, batch)
                batch = []
        yield from self._mine_batch(repo, name, spec.license, batch)

    def _mine_batch(self, repo: str, name: str, license: str | None, batch: list[CommitInfo]) -> Iterator[CommitRecord]:
        """Records of single-change candidate commits: their blobs and patches in one git call each."""
        if not batch:
            return
        changes = [c.changes[0] for c in batch]
        blobs = read_blobs(repo, [b for ch in changes for b in (ch.old_blob, ch.new_blob)])
        patches = commit_patches(repo, [c.sha for c in batch], self.config.diff_context)
        for commit, change in zip(batch, changes, strict=True):
            texts = self._texts(blobs[change.old_blob], blobs[change.new_blob])
            if texts is not None:
                diff = patches.get(commit.sha, "")
                yield self._record(
                    name, commit.sha, commit.unix_time, commit.message, change.path, texts, diff, license
                )

    def _commit_problem(self, parents, unix_time: int, changes) -> str | None:
        if not parents:
            return "root_commit"
        if len(changes) != 1:
            return "multi_file" if len(changes) > 1 else "no_change"
        change = changes[0]
        if change.status == "R":
            return "rename"
        if change.status != "M" or change.old_mode != change.new_mode or change.new_mode not in _REGULAR_MODES:
            return "not_in_place"
        return self._path_and_date_problem(change.path, unix_time)

    def _path_and_date_problem(self, path: str, unix_time: int | None) -> str | None:
        if self.languages.language_of(path) is None:
            return "language"
        if _has_surrogates(path):
            return "bad_path"
        if unix_time is not None and (
            (self.since is not None and unix_time < self.since) or (self.until is not None and unix_time >= self.until)
        ):
            return "date"
        return None

    def _texts(self, old: bytes, new: bytes) -> tuple[str, str] | None:
        """Both versions as text, or None (counted) when either is empty, too large, binary, or they are equal."""
        sizes = (len(old), len(new))
        if min(sizes) < max(self.config.min_bytes, 1):
            reason = "empty"
        elif max(sizes) > self.config.max_bytes:
            reason = "too_large"
        elif old == new:
            reason = "unchanged"
        else:
            texts = _decode(old), _decode(new)
            reason = "binary" if None in texts else None
        if reason:
            self.count(reason)
            return None
        return texts  # type: ignore[return-value]

    def _record(self, repo, sha, unix_time: int, message, path, texts, diff: str, license) -> CommitRecord:
        self.count("forwarded")
        date = datetime.fromtimestamp(unix_time, UTC).isoformat()
        language = self.languages.language_of(path)
        return CommitRecord(repo, sha, date, message, path, language, texts[0], texts[1], diff, license)

    # ------------------------------------------------------------------------------------- BigQuery export
    def mine_export_row(self, row: dict, where: str) -> CommitRecord | None:
        """A record from one export row, its contents read from a local clone; None when dropped (counted).

        The row is untrusted: ``commit`` must be a hex id (else ``bad_commit_id``), and any git failure on it,
        in every listed mirror, is ``git_error``.
        """
        sha, old_path, new_path = row.get("commit"), row.get("old_file"), row.get("new_file")
        repos = row.get("repos") or row.get("repo") or ""
        if not all(isinstance(v, str) for v in (sha, old_path, new_path, repos)) or not repos:
            raise ThemisInputError(f"{where}: an export row needs commit, repos, old_file and new_file")
        if not is_commit_id(sha):
            logger.debug("%s: commit %r is not a hex object id; dropped", where, sha[:80])
            self.count("bad_commit_id")
            return None
        sha = sha.lower()
        if old_path != new_path:
            self.count("rename")
            return None
        unix_time = row.get("unix_time")
        reason = self._path_and_date_problem(new_path, int(unix_time) if unix_time is not None else None)
        if reason:
            self.count(reason)
            return None
        failed = False
        for repo in (r.strip() for r in repos.split(",")):
            clone = self._clone_path(repo)
            if clone is None:
                continue
            try:
                return self._export_record(clone, repo, sha, new_path, row)
            except GitError as exc:  # e.g. the commit is not in this clone: try the next mirror
                failed = True
                logger.debug("%s: %s", where, exc)
        self.count("git_error" if failed else "no_clone")
        return None

    def _export_record(self, clone: Path, repo: str, sha: str, path: str, row: dict) -> CommitRecord | None:
        commit = read_commit(clone, sha)
        if len(commit.parents) != 1:
            self.count("merge" if commit.parents else "root_commit")
            return None
        if row.get("unix_time") is None and self._path_and_date_problem(path, commit.unix_time):
            self.count("date")
            return None
        old_blob, new_blob = blob_at(clone, commit.parents[0], path), blob_at(clone, commit.sha, path)
        if old_blob is None or new_blob is None:
            self.count("not_in_place")
            return None
        blobs = read_blobs(clone, [old_blob, new_blob])
        texts = self._texts(blobs[old_blob], blobs[new_blob])
        if texts is None:
            return None
        message = row.get("message") if isinstance(row.get("message"), str) else commit.message
        diff = commit_patches(clone, [commit.sha], self.config.diff_context).get(commit.sha, "")
        return self._record(repo, commit.sha, commit.unix_time, message.strip(), path, texts, diff, row.get("license"))

    def _clone_path(self, repo: str) -> Path | None:
        if not _REPO_NAME.match(repo) or ".." in repo.split("/"):
            return None
        path = Path(self.config.clones_dir or ".") / repo
        return path if path.is_dir() else None


def iter_export_rows(paths: list[str]) -> Iterator[tuple[dict, str]]:
    """Rows of BigQuery-style JSONL exports with their ``file:line`` location, in file order."""
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ThemisInputError(f"{path}:{line_no}: not a JSON line ({exc})") from exc
                yield row, f"{path}:{line_no}"


def _read_repos_file(path: Path) -> list[RepoSpec]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ThemisInputError(f"mine.repos_file {path}: cannot read ({exc})") from exc
    specs = []
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        repo_path = Path(fields[0]).expanduser()
        if not repo_path.is_absolute():
            repo_path = path.parent / repo_path
        specs.append(RepoSpec(str(repo_path), *(f or None for f in fields[1:3])))
    return specs


def _decode(data: bytes) -> str | None:
    """UTF-8 text, or None for binary content (a NUL byte, as git decides, or invalid UTF-8)."""
    if b"\0" in data[:8000]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _parse_date(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
