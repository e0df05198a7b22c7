"""Read-only access to local git repositories, with ``git`` always invoked as an argument list.

The reference built shell strings with unquoted paths (``git checkout FETCH_HEAD -- new_file``), so a file name with a
space broke it and one with ``$(...)`` ran code. Here no file name, message or ref ever reaches a shell: paths are
read NUL-separated (``-z``), passed after ``--`` with ``--literal-pathspecs`` (no ``:(glob)`` magic), and blob
contents are fetched by object id through one ``git cat-file --batch`` process per batch.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from themis_rm.errors import ThemisInputError

GIT_TIMEOUT_S = 600
_HEADER = re.compile(r"^commit ([0-9a-f]{40,64}) (\d+) ?((?:[0-9a-f]{40,64} ?)*)$")
_RAW = re.compile(r"^:(\d{6}) (\d{6}) ([0-9a-f]{40,64}) ([0-9a-f]{40,64}) ([A-Z])(\d*)$")
_SHA_LINE = re.compile(rb"^[0-9a-f]{40,64}$")


class GitError(ThemisInputError):
    """A git command failed on a repository; the message names the repository, the command and git's stderr."""


@dataclass(frozen=True)
class FileChange:
    """One entry of ``git log --raw``: status ``M`` (modified), ``A``, ``D``, ``R`` (renamed), ``T`` (type)..."""

    status: str
    old_mode: str
    new_mode: str
    old_blob: str
    new_blob: str
    path: str
    new_path: str | None = None


@dataclass(frozen=True)
class CommitInfo:
    """A commit as listed by :func:`iter_commits`: sha, parents, committer time and the files it changed."""

    sha: str
    parents: tuple[str, ...]
    unix_time: int
    message: str
    changes: tuple[FileChange, ...]


def run_git(repo: str | Path, args: Sequence[str], stdin: bytes | None = None) -> bytes:
    """Run ``git -C repo <args>`` without a shell and return stdout; a non-zero exit raises :class:`GitError`."""
    command = ["git", "--no-pager", "--literal-pathspecs", "-c", "core.quotepath=false", "-C", str(repo), *args]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=GIT_TIMEOUT_S, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"{repo}: git {args[0]} could not run ({exc})") from exc
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()[:500]
        raise GitError(f"{repo}: git {' '.join(args[:2])} failed with exit {done.returncode}: {stderr}")
    return done.stdout


def is_repository(path: str | Path) -> bool:
    """Whether ``path`` is inside a git work tree or is a bare repository."""
    try:
        return run_git(path, ["rev-parse", "--git-dir"]).strip() != b""
    except GitError:
        return False


def count_merges(repo: str | Path, rev: str = "HEAD") -> int:
    """Merge commits reachable from ``rev`` (they are never mined, only counted)."""
    return int(run_git(repo, ["rev-list", "--count", "--merges", rev, "--"]).strip() or 0)


def iter_commits(repo: str | Path, rev: str = "HEAD") -> Iterator[CommitInfo]:
    """Non-merge commits reachable from ``rev``, newest first, with their raw file changes (renames detected).

    One ``git log -z --raw`` call; the NUL-separated stream is parsed positionally (header, message, then
    ``:mode mode blob blob status`` entries each followed by one path, two for renames and copies), so no message
    or file name can be mistaken for structure.
    """
    fmt = "--format=commit %H %ct %P%x00%B"
    out = run_git(repo, ["log", "-z", "--raw", "--no-abbrev", "-M", "--no-merges", "--no-color", fmt, rev, "--"])
    tokens = out.split(b"\0")
    i = 0
    while i < len(tokens):
        header = tokens[i].decode("ascii", "replace").strip("\n")
        if not header:
            i += 1
            continue
        match = _HEADER.match(header)
        if match is None:
            raise GitError(f"{repo}: unexpected git log output near {header[:80]!r}")
        message = tokens[i + 1].decode("utf-8", "replace").strip() if i + 1 < len(tokens) else ""
        i += 2
        changes = []
        while i < len(tokens) and (raw := _RAW.match(tokens[i].decode("ascii", "replace").lstrip("\n"))):
            old_mode, new_mode, old_blob, new_blob, status, _score = raw.groups()
            paths = 2 if status in ("R", "C") else 1
            names = [_decode_path(t) for t in tokens[i + 1 : i + 1 + paths]]
            changes.append(
                FileChange(status, old_mode, new_mode, old_blob, new_blob, names[0], names[1] if paths == 2 else None)
            )
            i += 1 + paths
        yield CommitInfo(match.group(1), tuple(match.group(3).split()), int(match.group(2)), message, tuple(changes))


def read_blobs(repo: str | Path, blob_ids: Iterable[str]) -> dict[str, bytes]:
    """Contents of blobs by id, through one ``git cat-file --batch`` process."""
    ids = list(dict.fromkeys(blob_ids))
    if not ids:
        return {}
    out = run_git(repo, ["cat-file", "--batch"], stdin=("\n".join(ids) + "\n").encode())
    blobs, pos = {}, 0
    for blob_id in ids:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise GitError(f"{repo}: object {blob_id} is not a readable blob ({out[pos:end][:80]!r})")
        size = int(header[2])
        blobs[blob_id] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return blobs


def commit_patches(repo: str | Path, shas: Iterable[str], context: int = 3) -> dict[str, str]:
    """Unified diffs of commits against their first parent, by sha (one ``git diff-tree --stdin`` call).

    The output has a bare sha line before each commit's patch; a patch line always starts with a marker
    (`` ``, ``+``, ``-``, ``@``, ``diff``, ...), so a line that is exactly a requested sha is a separator.
    """
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    args = ["diff-tree", "--stdin", "-p", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames"]
    out = run_git(repo, [*args, f"-U{context}"], stdin=("\n".join(wanted) + "\n").encode())
    requested = {sha.encode() for sha in wanted}
    patches: dict[str, list[bytes]] = {}
    current: list[bytes] | None = None
    for line in out.splitlines(keepends=True):
        bare = line.rstrip(b"\n")
        if _SHA_LINE.match(bare) and bare in requested and bare.decode() not in patches:
            current = patches.setdefault(bare.decode(), [])
        elif current is not None:
            current.append(line)
    return {sha: b"".join(lines).decode("utf-8", "replace") for sha, lines in patches.items()}


def commit_time(repo: str | Path, sha: str) -> tuple[int, tuple[str, ...], str]:
    """(committer unix time, parents, message) of one commit."""
    out = run_git(repo, ["show", "-s", "-z", "--format=%ct %P%x00%B", sha, "--"])
    head, _, message = out.partition(b"\0")
    fields = head.decode("ascii").split()
    return int(fields[0]), tuple(fields[1:]), message.rstrip(b"\0").decode("utf-8", "replace").strip()


def blob_at(repo: str | Path, rev: str, path: str) -> str | None:
    """Blob id of ``path`` at ``rev`` (None when absent); the path is matched literally, never as a pattern."""
    out = run_git(repo, ["ls-tree", "-z", "--full-tree", rev, "--", path])
    for entry in out.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        if name and _decode_path(name) == path:
            fields = meta.split()
            return fields[2].decode() if len(fields) == 3 and fields[1] == b"blob" else None
    return None


def origin_name(repo: str | Path) -> str | None:
    """``owner/name`` from the ``origin`` remote URL (https, ssh or scp-like), None when there is none."""
    try:
        url = run_git(repo, ["config", "--get", "remote.origin.url"]).decode().strip()
    except GitError:
        return None
    match = re.search(r"[:/]([^/:]+)/([^/]+?)(?:\.git)?/?$", url)
    return f"{match.group(1)}/{match.group(2)}" if match else None


def _decode_path(raw: bytes) -> str:
    """A path as text; bytes that are not UTF-8 are kept as surrogate escapes (and such paths are dropped later)."""
    return raw.decode("utf-8", "surrogateescape")
