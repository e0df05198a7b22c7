"""Fixtures of the data tests: real git repositories in tmp_path (git as argument lists) and a programmable
OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest


class GitRepo:
    """A repository in ``path`` with helpers to commit files at fixed dates (deterministic shas)."""

    def __init__(self, path: Path, origin: str | None = None) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")
        self.git("config", "commit.gpgsign", "false")
        if origin:
            self.git("remote", "add", "origin", f"https://github.com/{origin}.git")
        self._clock = 0

    def git(self, *args: str, date: str | None = None) -> str:
        env = {**os.environ, "GIT_AUTHOR_DATE": date or "", "GIT_COMMITTER_DATE": date or ""}
        if date is None:
            env.pop("GIT_AUTHOR_DATE")
            env.pop("GIT_COMMITTER_DATE")
        done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, env=env, check=True)
        return done.stdout.decode()

    def commit(self, files: dict[str, str | bytes | None], message: str, date: str | None = None) -> str:
        """Write (or delete, for None) files and commit them; returns the sha."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                self.git("rm", "-q", "--", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
            self.git("add", "--", name)
        self.git("commit", "-q", "--allow-empty", "--cleanup=verbatim", "-m", message, date=date or self._tick())
        return self.git("rev-parse", "HEAD").strip()

    def _tick(self) -> str:
        """The next commit date: one hour after the previous one, from 2018-01-01."""
        self._clock += 1
        return (datetime(2018, 1, 1, tzinfo=UTC) + timedelta(hours=self._clock)).isoformat()

    def rename(self, old: str, new: str, message: str) -> str:
        self.git("mv", "--", old, new)
        self.git("commit", "-q", "-m", message, date=self._tick())
        return self.git("rev-parse", "HEAD").strip()

    def merge_branch(self, branch: str, files: dict[str, str], message: str, branch_message: str = "") -> str:
        """Commit ``files`` on a new branch (``branch_message``) and merge it back with a merge commit."""
        self.git("checkout", "-q", "-b", branch)
        self.commit(files, branch_message or f"work on {branch}")
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", "-m", message, branch, date=self._tick())
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def make_repo(tmp_path):
    """``make_repo("name", origin="owner/name")`` -> a fresh :class:`GitRepo` under tmp_path."""

    def make(name: str, origin: str | None = None, root: Path | None = None) -> GitRepo:
        return GitRepo((root or tmp_path) / name, origin=origin)

    return make
