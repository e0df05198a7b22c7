"""Read-only access to local git repositories, with ``git`` always invoked as an argument list.

The reference built shell strings with unquoted paths (``git checkout FETCH_HEAD -- new_file``), so a file name with a
space broke it and one with ``$(...)`` ran code. Here no file name, message or ref ever reaches a shell: paths are
read NUL-separated (``-z``), passed after ``--`` with ``--literal-pathspecs`` (no ``:(glob)`` magic), and blob
contents are fetched by object id through one ``git cat-file --batch`` process per batch. Every revision that comes
from data or config is passed after ``--end-of-options`` (git >= 2.24), so a value like ``--output=/tmp/x`` is a bad
revision, never an option; commit ids from an export must also pass :func:`is_commit_id` before they get here.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from themis_rm.errors import ThemisInputError

GIT_TIMEOUT_S = 600
"""Limit of one short git call (blobs of a batch, patches, ``ls-tree``)."""
GIT_READ_TIMEOUT_S = 600
"""Streaming calls (``git log`` over a whole history) have no overall limit, only this much silence at most."""
END_OF_OPTIONS = "--end-of-options"
MIN_GIT_VERSION = (2, 24)
_HEADER = re.compile(r"^commit ([0-9a-f]{40,64}) (\d+) ?((?:[0-9a-f]{40,64} ?)*)$")
_RAW = re.compile(r"^:(\d{6}) (\d{6}) ([0-9a-f]{40,64}) ([0-9a-f]{40,64}) ([A-Z])(\d*)$")
_SHA_LINE = re.compile(rb"^[0-9a-f]{40,64}$")
_COMMIT_ID = re.compile(r"[0-9a-fA-F]{7,64}")
_READ_CHUNK = 1 << 16


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


def is_commit_id(value: object) -> bool:
    """Whether ``value`` is a (possibly abbreviated) hex object id: 7 to 64 hex digits and nothing else.

    Export rows are untrusted: a ``commit`` like ``--output=/tmp/x`` or ``HEAD~1; rm -rf /`` must never reach git.
    """
    return isinstance(value, str) and _COMMIT_ID.fullmatch(value) is not None


SAFE_CONFIG = (
    "core.quotepath=false",
    # A mined repository is untrusted, and its .git/config can name programs git runs on its own: the fsmonitor
    # hook (run by diff-tree, log, ...), hooks, a pager, an external diff, an ssh or askpass program, fetch and
    # signature helpers. Command-line values beat the repository's, so each is set to "nothing to run".
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "core.sshCommand=false",
    "core.askPass=",
    "core.alternateRefsCommand=",
    "diff.external=",
    "gpg.program=false",
    "credential.helper=",
    "protocol.allow=never",
)
"""``-c`` settings of every git command (tested with a repository whose config sets each of them)."""


def _command(repo: str | Path, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The argument list and environment of ``git -C repo <args>``: no pager, prompt, locks or localisation, and
    none of the programs a hostile repository's config could have git run (:data:`SAFE_CONFIG`)."""
    config = [part for setting in SAFE_CONFIG for part in ("-c", setting)]
    command = ["git", "--no-pager", "--literal-pathspecs", *config, "-C", str(repo), *args]
    env = {k: v for k, v in os.environ.items() if k not in _PROGRAM_VARIABLES}
    env |= {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_PAGER": "cat"}
    return command, env


_PROGRAM_VARIABLES = ("GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND")


def run_git(repo: str | Path, args: Sequence[str], stdin: bytes | None = None) -> bytes:
    """Run ``git -C repo <args>`` without a shell and return stdout; a non-zero exit raises :class:`GitError`."""
    command, env = _command(repo, args)
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=GIT_TIMEOUT_S, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"{repo}: git {args[0]} could not run ({exc})") from exc
    if done.returncode != 0:
        raise _failed(repo, args, done.returncode, done.stderr)
    return done.stdout


def stream_git(repo: str | Path, args: Sequence[str], read_timeout_s: float | None = None) -> Iterator[bytes]:
    """Stdout of ``git -C repo <args>`` in chunks as git writes them, for outputs too large to hold in memory.

    There is no limit on the whole run (a big history takes as long as it takes), only on silence: no byte for
    ``read_timeout_s`` (default :data:`GIT_READ_TIMEOUT_S`) kills git and raises :class:`GitError`. Stderr goes
    to a temporary file, so git can never block on a full stderr pipe. Closing the iterator early kills git.
    """
    command, env = _command(repo, args)
    read_timeout_s = GIT_READ_TIMEOUT_S if read_timeout_s is None else read_timeout_s
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env)
        except OSError as exc:
            raise GitError(f"{repo}: git {args[0]} could not run ({exc})") from exc
        try:
            yield from _read_until_eof(repo, args, proc, read_timeout_s)
            code = proc.wait(timeout=read_timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"{repo}: git {args[0]} did not exit {read_timeout_s} s after its output ended") from exc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
        if code != 0:
            stderr.seek(0)
            raise _failed(repo, args, code, stderr.read(4096))


def _read_until_eof(repo, args: Sequence[str], proc: subprocess.Popen, read_timeout_s: float) -> Iterator[bytes]:
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if not selector.select(read_timeout_s):
                raise GitError(
                    f"{repo}: git {args[0]} wrote nothing for {read_timeout_s} s (stalled repository or disk?); "
                    "raise themis_rm.data.git.GIT_READ_TIMEOUT_S if it is just slow"
                )
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                return
            yield chunk


def _failed(repo: str | Path, args: Sequence[str], code: int, stderr: bytes) -> GitError:
    message = stderr.decode("utf-8", "replace").strip()[:500]
    return GitError(f"{repo}: git {' '.join(args[:2])} failed with exit {code}: {message}")


@lru_cache(maxsize=1)
def check_git_version() -> tuple[int, int]:
    """The installed git's (major, minor); older than 2.24 (no ``--end-of-options``) raises :class:`GitError`."""
    try:
        out = subprocess.run(["git", "--version"], capture_output=True, timeout=60, check=True).stdout.decode()
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitError(f"git is needed to mine commits and cannot be run ({exc}); install git >= 2.24") from exc
    match = re.search(r"(\d+)\.(\d+)", out)
    version = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if version < MIN_GIT_VERSION:
        raise GitError(f"git {out.strip()!r} is too old: mining needs git >= 2.24 (for --end-of-options)")
    return version


def is_repository(path: str | Path) -> bool:
    """Whether ``path`` is inside a git work tree or is a bare repository."""
    try:
        return run_git(path, ["rev-parse", "--git-dir"]).strip() != b""
    except GitError:
        return False


def count_merges(repo: str | Path, rev: str = "HEAD") -> int:
    """Merge commits reachable from ``rev`` (they are never mined, only counted)."""
    return int(run_git(repo, ["rev-list", "--count", "--merges", END_OF_OPTIONS, rev, "--"]).strip() or 0)


def iter_commits(repo: str | Path, rev: str = "HEAD") -> Iterator[CommitInfo]:
    """Non-merge commits reachable from ``rev``, newest first, with their raw file changes (renames detected).

    One streamed ``git log -z --raw`` call, parsed as it arrives (a history of millions of commits is never held in
    memory). The NUL-separated stream is parsed positionally (header, message, then ``:mode mode blob blob status``
    entries each followed by one path, two for renames and copies), so no message or file name can be mistaken for
    structure.
    """
    fmt = "--format=commit %H %ct %P%x00%B"
    args = ["log", "-z", "--raw", "--no-abbrev", "-M", "--no-merges", "--no-color", fmt, END_OF_OPTIONS, rev, "--"]
    yield from _parse_log(repo, _nul_tokens(stream_git(repo, args)))


def _nul_tokens(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The NUL-separated fields of a chunked stream, as ``b"".join(chunks).split(b"\\0")`` would give them."""
    pending: list[bytes] = []
    for chunk in chunks:
        parts = chunk.split(b"\0")
        if len(parts) == 1:
            pending.append(chunk)
            continue
        yield b"".join([*pending, parts[0]])
        yield from parts[1:-1]
        pending = [parts[-1]]
    yield b"".join(pending)


def _parse_log(repo: str | Path, tokens: Iterator[bytes]) -> Iterator[CommitInfo]:
    token = next(tokens, None)
    while token is not None:
        header = token.decode("ascii", "replace").strip("\n")
        if not header:
            token = next(tokens, None)
            continue
        match = _HEADER.match(header)
        if match is None:
            raise GitError(f"{repo}: unexpected git log output near {header[:80]!r}")
        message = next(tokens, b"").decode("utf-8", "replace").strip()
        changes = []
        token = next(tokens, None)
        while token is not None and (raw := _RAW.match(token.decode("ascii", "replace").lstrip("\n"))):
            old_mode, new_mode, old_blob, new_blob, status, _score = raw.groups()
            names = [_decode_path(next(tokens, b"")) for _ in range(2 if status in ("R", "C") else 1)]
            new_path = names[1] if len(names) == 2 else None
            changes.append(FileChange(status, old_mode, new_mode, old_blob, new_blob, names[0], new_path))
            token = next(tokens, None)
        yield CommitInfo(match.group(1), tuple(match.group(3).split()), int(match.group(2)), message, tuple(changes))


def read_blobs(repo: str | Path, blob_ids: Iterable[str]) -> dict[str, bytes]:
    """Contents of blobs by id, through one ``git cat-file --batch`` process."""
    ids = list(dict.fromkeys(blob_ids))
    if not ids:
        return {}
    out = run_git(repo, ["cat-file", "--batch"], stdin=("\n".join(ids) + "\n").encode())
    blobs, pos = {}, 0
    for blob_id in ids:
        end = out.find(b"\n", pos)
        header = out[pos:end].split() if end >= 0 else []
        if len(header) != 3 or header[1] != b"blob" or not header[2].isdigit():
            raise GitError(f"{repo}: object {blob_id} is not a readable blob ({out[pos : max(end, pos)][:80]!r})")
        size = int(header[2])
        blobs[blob_id] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return blobs


def commit_patches(repo: str | Path, shas: Iterable[str], context: int = 3) -> dict[str, str]:
    """Unified diffs of commits against their first parent, by full sha (one ``git diff-tree --stdin`` call).

    The output has a bare sha line before each commit's patch; a patch line always starts with a marker
    (`` ``, ``+``, ``-``, ``@``, ``diff``, ...), so a line that is exactly a requested sha is a separator. git echoes
    each sha as given, so pass full ones (:func:`read_commit` resolves an abbreviated id).
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


def read_commit(repo: str | Path, rev: str) -> CommitInfo:
    """Full sha, parents, committer time and message of one commit (``changes`` left empty).

    Raises:
        GitError: git fails (unknown or ambiguous revision) or prints something that is not a commit header.
    """
    out = run_git(repo, ["show", "-s", "-z", "--format=%H %ct %P%x00%B", END_OF_OPTIONS, rev, "--"])
    head, _, message = out.partition(b"\0")
    fields = head.decode("ascii", "replace").split()
    if len(fields) < 2 or not _SHA_LINE.match(fields[0].encode()) or not fields[1].isdigit():
        raise GitError(f"{repo}: git show {rev!r} printed no commit header ({out[:80]!r})")
    text = message.rstrip(b"\0").decode("utf-8", "replace").strip()
    return CommitInfo(fields[0], tuple(fields[2:]), int(fields[1]), text, ())


def blob_at(repo: str | Path, rev: str, path: str) -> str | None:
    """Blob id of ``path`` at ``rev`` (None when absent); the path is matched literally, never as a pattern."""
    out = run_git(repo, ["ls-tree", "-z", "--full-tree", END_OF_OPTIONS, rev, "--", path])
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
