"""Mining from real git repositories in tmp_path: what becomes a record, what is counted, hostile inputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from themis_rm.data.mine import CommitMiner, MineConfig, RepoSpec, iter_export_rows
from themis_rm.errors import ThemisInputError

pytest.importorskip("datatrove")


def mine(path: Path, **options):
    counts: Counter[str] = Counter()
    miner = CommitMiner(MineConfig(repos=[str(path)], **options), lambda o, n=1: counts.update({o: n}))
    return list(miner.mine_repository(RepoSpec(str(path)))), counts


def test_in_place_modification_becomes_record_with_unified_diff(make_repo):
    repo = make_repo("kv", origin="acme/kv")
    repo.commit({"src/kv.py": "def get(d, k):\n    return d[k]\n"}, "Add kv module")
    sha = repo.commit({"src/kv.py": "def get(d, k):\n    return d.get(k)\n"}, "Fix crash on missing key\n\nDetails.")
    records, counts = mine(repo.path)
    assert len(records) == 1
    record = records[0]
    assert (record.repo, record.commit, record.path, record.language) == ("acme/kv", sha, "src/kv.py", "Python")
    assert record.message == "Fix crash on missing key\n\nDetails."
    assert record.date == "2018-01-01T02:00:00+00:00"
    assert record.old_contents.endswith("return d[k]\n") and record.new_contents.endswith("return d.get(k)\n")
    assert (
        "--- a/src/kv.py" in record.diff and "-    return d[k]" in record.diff and "+    return d.get(k)" in record.diff
    )
    assert counts == Counter({"forwarded": 1, "root_commit": 1})


HOSTILE_NAMES = [
    "$(touch PWNED).py",
    "a b;touch PWNED2;.py",
    "-rf.py",
    "--output=x.py",
    ":(glob)*.py",
    "`touch PWNED3`.js",
    "quote'\"d.go",
    "new\nline.rb",
    "ünïcödé.java",
]
HOSTILE_MESSAGE = (
    "Fix $(touch PWNED4) `touch PWNED5` handling; rm -rf / \x1f\n"
    "commit 0123456789abcdef0123456789abcdef01234567 12 \n"
    ":100644 100644 0123456789abcdef0123456789abcdef01234567 0123456789abcdef0123456789abcdef01234567 M\n"
)


def test_hostile_file_names_and_messages_never_reach_a_shell(tmp_path, make_repo, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repo = make_repo("hostile")
    for name in HOSTILE_NAMES:
        repo.commit({name: "x = 1\n"}, f"add {name}")
        repo.commit({name: "x = 2\n"}, HOSTILE_MESSAGE)
    records, counts = mine(repo.path, languages=["Python", "JavaScript", "Go", "Ruby", "Java"])
    assert sorted(r.path for r in records) == sorted(HOSTILE_NAMES)
    assert all(r.message == HOSTILE_MESSAGE.strip() for r in records)
    assert all(r.old_contents == "x = 1\n" and r.new_contents == "x = 2\n" for r in records)
    assert counts["forwarded"] == len(HOSTILE_NAMES)
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))


HOSTILE_CONFIG = {  # every program a repository's own .git/config can ask git to run
    "core.fsmonitor": "touch {mark}/PWNED-fsmonitor",
    "core.pager": "touch {mark}/PWNED-pager",
    "core.sshCommand": "touch {mark}/PWNED-ssh",
    "core.askPass": "touch {mark}/PWNED-askpass",
    "core.alternateRefsCommand": "touch {mark}/PWNED-alternates",
    "diff.external": "touch {mark}/PWNED-diff",
    "gpg.program": "touch {mark}/PWNED-gpg",
    "credential.helper": "!touch {mark}/PWNED-credential",
    "core.hooksPath": "{mark}/hooks",
}


def test_a_hostile_repository_config_runs_nothing(tmp_path, make_repo):
    """Issue 21, item 8: ``core.fsmonitor`` in a mined repository's .git/config ran a command during mining."""
    mark = tmp_path / "marks"
    (mark / "hooks").mkdir(parents=True)
    for hook in ("post-checkout", "post-index-change", "reference-transaction", "pre-auto-gc"):
        (mark / "hooks" / hook).write_text(f"#!/bin/sh\ntouch {mark}/PWNED-hook-{hook}\n")
        (mark / "hooks" / hook).chmod(0o755)
    repo = make_repo("hostile-config")
    repo.commit({"a.py": "x = 1\n"}, "Add the module")
    repo.commit({"a.py": "x = 2\n"}, "Fix the value of x")
    for key, value in HOSTILE_CONFIG.items():
        repo.git("config", key, value.format(mark=mark))
    records, _ = mine(repo.path)
    assert [r.new_contents for r in records] == ["x = 2\n"]
    assert sorted(p.name for p in mark.iterdir()) == ["hooks"]


def test_structural_drops_are_counted_by_reason(make_repo):
    repo = make_repo("r")
    repo.commit({"a.py": "a = 1\n", "b.py": "b = 1\n"}, "start")  # root commit
    repo.commit({"a.py": "a = 2\n", "b.py": "b = 2\n"}, "two files at once")  # multi_file
    repo.rename("a.py", "c.py", "rename a to c")  # rename
    repo.commit({"new.py": "n = 1\n"}, "add a file")  # not_in_place (added)
    repo.commit({"new.py": None}, "delete it")  # not_in_place (deleted)
    repo.commit({"c.py": b"\x00\x01binary"}, "now binary")  # binary
    repo.merge_branch("feature", {"b.py": "b = 3\n"}, "Merge branch feature")  # merge + one in-place commit
    repo.commit({"notes.md": "# notes\n"}, "docs")  # added, and not a target language anyway
    repo.commit({"notes.md": "# more notes\n"}, "more docs")  # language
    records, counts = mine(repo.path)
    assert [r.message for r in records] == ["work on feature"]
    assert counts == Counter(
        {
            "root_commit": 1,
            "multi_file": 1,
            "rename": 1,
            "not_in_place": 3,
            "binary": 1,
            "merge": 1,
            "forwarded": 1,
            "language": 1,
        }
    )


def test_languages_by_extension_include_headers_tsx_and_jsx(make_repo):
    repo = make_repo("langs")
    names = ["a.hpp", "b.tsx", "c.jsx", "d.PY", "e.cs", "f.cc", "g.h", "h.txt"]
    for name in names:
        repo.commit({name: "1\n"}, "add")
        repo.commit({name: "2\n"}, "change")
    records, counts = mine(repo.path, languages=["Cpp", "TypeScript", "JavaScript", "Python", "CSharp", "C"])
    assert {r.path: r.language for r in records} == {
        "a.hpp": "Cpp",
        "b.tsx": "TypeScript",
        "c.jsx": "JavaScript",
        "d.PY": "Python",
        "e.cs": "CSharp",
        "f.cc": "Cpp",
        "g.h": "C",
    }
    assert counts["language"] == 1


def test_default_languages_are_the_eight_benchmark_ones(make_repo):
    repo = make_repo("ts")
    repo.commit({"a.ts": "1\n"}, "add")
    repo.commit({"a.ts": "2\n"}, "change")
    records, counts = mine(repo.path)
    assert records == [] and counts["language"] == 1


def test_date_window_and_size_limits(make_repo):
    repo = make_repo("dates")
    repo.commit({"a.go": "package a\n"}, "add", date="2018-06-01T00:00:00+00:00")
    repo.commit({"a.go": "package a // 1\n"}, "early", date="2019-01-15T00:00:00+00:00")
    repo.commit({"a.go": "package a // 2\n"}, "inside", date="2019-07-01T00:00:00+00:00")
    repo.commit({"a.go": "package a // 3\n"}, "at until", date="2021-01-01T00:00:00+00:00")
    repo.commit({"a.go": "package a // " + "x" * 500 + "\n"}, "too big", date="2019-08-01T00:00:00+00:00")
    records, counts = mine(repo.path, since="2019-06-01", until="2021-01-01", max_bytes=100)
    assert [r.message for r in records] == ["inside"]
    assert counts == Counter({"root_commit": 1, "date": 2, "too_large": 1, "forwarded": 1})


def test_bad_dates_and_sizes_are_rejected_together():
    with pytest.raises(ThemisInputError) as info:
        MineConfig(since="last year", until="2019-13-01", min_bytes=10, max_bytes=5)
    message = str(info.value)
    assert "mine.since" in message and "mine.until" in message and "min_bytes" in message


def test_bigquery_export_rows_read_contents_from_clones(tmp_path, make_repo):
    clones = tmp_path / "clones"
    repo = make_repo("kv", root=clones / "acme")
    hostile = "$(touch PWNED) x.py"
    repo.commit({"kv.py": "v = 1\n", hostile: "h = 1\n"}, "start")
    fix = repo.commit({"kv.py": "v = 2\n"}, "Fix value")
    fix_hostile = repo.commit({hostile: "h = 2\n"}, "Fix hostile")
    rows = [
        {"commit": fix, "repos": "gone/mirror,acme/kv", "old_file": "kv.py", "new_file": "kv.py", "message": "Fix v"},
        {"commit": fix_hostile, "repos": "acme/kv", "old_file": hostile, "new_file": hostile, "message": "m"},
        {"commit": fix, "repos": "acme/kv", "old_file": "old.py", "new_file": "kv.py", "message": "m"},
        {"commit": fix, "repos": "nobody/here", "old_file": "kv.py", "new_file": "kv.py", "message": "m"},
        {"commit": "f" * 40, "repos": "acme/kv", "old_file": "kv.py", "new_file": "kv.py", "message": "m"},
        {"commit": fix, "repos": "../../etc", "old_file": "kv.py", "new_file": "kv.py", "message": "m"},
        {"commit": fix, "repos": "acme/kv", "old_file": "kv.py", "new_file": "kv.py", "unix_time": 0},
    ]
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in rows))
    counts: Counter[str] = Counter()
    config = MineConfig(bigquery=[str(export)], clones_dir=str(clones), since="2000-01-01")
    miner = CommitMiner(config, lambda o, n=1: counts.update({o: n}))
    records = [r for row, where in iter_export_rows(config.bigquery) if (r := miner.mine_export_row(row, where))]
    assert [(r.repo, r.path, r.message, r.old_contents, r.new_contents) for r in records] == [
        ("acme/kv", "kv.py", "Fix v", "v = 1\n", "v = 2\n"),
        ("acme/kv", hostile, "m", "h = 1\n", "h = 2\n"),
    ]
    assert "+v = 2" in records[0].diff
    assert counts == Counter({"forwarded": 2, "rename": 1, "no_clone": 2, "git_error": 1, "date": 1})
    assert not list(tmp_path.rglob("PWNED"))


def test_export_row_without_required_columns_names_the_line(tmp_path):
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps({"commit": "abc"}) + "\n")
    miner = CommitMiner(MineConfig(bigquery=[str(export)], clones_dir=str(tmp_path)), lambda o, n=1: None)
    with pytest.raises(ThemisInputError, match=r"export.jsonl:1: an export row needs"):
        for row, where in iter_export_rows([str(export)]):
            miner.mine_export_row(row, where)


def test_repos_file_lists_paths_names_and_licenses(tmp_path, make_repo):
    make_repo("one")
    make_repo("two")
    listing = tmp_path / "repos.txt"
    listing.write_text("# comment\none\tacme/one\tmit\n" + str(tmp_path / "two") + "\n")
    specs = MineConfig(repos_file=str(listing)).repo_specs()
    assert [(Path(s.path).name, s.name, s.license) for s in specs] == [("one", "acme/one", "mit"), ("two", None, None)]


HOSTILE_COMMITS = [
    "--output={tmp}/PWNED",
    "-p",
    "--exec=touch {tmp}/PWNED2",
    "HEAD~1",
    "abcdef1;rm -rf {tmp}",
    "abcdef1 --output={tmp}/PWNED3",
    "abcdef1\n--output={tmp}/PWNED4",
    "ãbcdef1234567",
    "$(touch {tmp}/PWNED5)",
    "abc123",  # too short
    "a" * 65,  # too long
    "",
]


def test_hostile_commit_ids_in_an_export_are_counted_and_never_reach_git(tmp_path, make_repo, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clones = tmp_path / "clones"
    repo = make_repo("kv", root=clones / "acme")
    repo.commit({"kv.py": "v = 1\n"}, "start")
    fix = repo.commit({"kv.py": "v = 2\n"}, "Fix value")
    values = [value.format(tmp=tmp_path) for value in HOSTILE_COMMITS]
    rows = [{"commit": v, "repos": "acme/kv", "old_file": "kv.py", "new_file": "kv.py"} for v in values]
    rows.append({"commit": fix[:10].upper(), "repos": "acme/kv", "old_file": "kv.py", "new_file": "kv.py"})
    counts: Counter[str] = Counter()
    miner = CommitMiner(MineConfig(bigquery=["x"], clones_dir=str(clones)), lambda o, n=1: counts.update({o: n}))
    records = [r for i, row in enumerate(rows) if (r := miner.mine_export_row(row, f"x:{i}"))]
    assert counts == Counter({"bad_commit_id": len(values), "forwarded": 1})
    assert [r.commit for r in records] == [fix]  # an abbreviated id is resolved to the full sha
    assert not [p.name for p in tmp_path.rglob("PWNED*")]


@pytest.mark.parametrize("rev", ["--output={tmp}/PWNED", "--exec=touch {tmp}/PWNED", "-p"])
def test_git_calls_never_parse_a_revision_as_an_option(tmp_path, make_repo, rev):
    from themis_rm.data.git import GitError, blob_at, count_merges, iter_commits, read_commit

    repo = make_repo("r")
    repo.commit({"a.py": "a = 1\n"}, "start")
    repo.commit({"a.py": "a = 2\n"}, "change")
    rev = rev.format(tmp=tmp_path)
    calls = [
        lambda: read_commit(repo.path, rev),
        lambda: blob_at(repo.path, rev, "a.py"),
        lambda: count_merges(repo.path, rev),
        lambda: list(iter_commits(repo.path, rev)),
    ]
    for call in calls:
        with pytest.raises(GitError, match="failed with exit"):
            call()
    assert not list(tmp_path.rglob("PWNED*"))


def test_export_row_whose_commit_git_cannot_show_counts_git_error(tmp_path, make_repo):
    clones = tmp_path / "clones"
    repo = make_repo("kv", root=clones / "acme")
    repo.commit({"kv.py": "v = 1\n"}, "start")
    tree = repo.git("rev-parse", "HEAD^{tree}").strip()  # a valid hex id that is not a commit
    counts: Counter[str] = Counter()
    miner = CommitMiner(MineConfig(bigquery=["x"], clones_dir=str(clones)), lambda o, n=1: counts.update({o: n}))
    row = {"repos": "acme/kv", "old_file": "kv.py", "new_file": "kv.py"}
    for sha in (tree, "0" * 40, "abcdef1"):
        assert miner.mine_export_row({**row, "commit": sha}, "x:1") is None
    assert counts == Counter({"git_error": 3})


# --------------------------------------------------------------------------------------- streamed git log
def test_git_log_is_parsed_the_same_whatever_the_chunking(make_repo, monkeypatch):
    from themis_rm.data import git

    repo = make_repo("chunks")
    repo.commit({"a.py": "a = 0\n", "b.py": "b = 0\n"}, "start")
    for i in range(1, 12):
        repo.commit({"a.py": f"a = {i}\n"}, f"change {i}\n\nbody with ünïcödé and NUL-free text {i}")
    repo.rename("b.py", "c.py", "rename b")
    whole = list(git.iter_commits(repo.path))
    monkeypatch.setattr(git, "_READ_CHUNK", 7)  # every field is split across reads
    assert list(git.iter_commits(repo.path)) == whole
    assert len(whole) == 13 and whole[0].changes[0].status == "R" and whole[-1].parents == ()
    records, counts = mine(repo.path)
    assert len(records) == 11 and counts["forwarded"] == 11


def test_nul_tokens_match_split_for_any_chunking():
    from themis_rm.data.git import _nul_tokens

    data = b"\0commit a\0msg\0\0:x\0path\0tail"
    for size in range(1, len(data) + 1):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert list(_nul_tokens(chunks)) == data.split(b"\0")
    assert list(_nul_tokens([])) == [b""]


def test_stalled_git_is_killed_after_its_read_timeout_not_a_whole_run_limit(tmp_path, monkeypatch):
    from themis_rm.data.git import GitError, stream_git

    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nprintf first\nsleep 0.3\nprintf second\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    chunks = []
    with pytest.raises(GitError, match=r"wrote nothing for 1\.0 s"):
        for chunk in stream_git(tmp_path, ["log"], read_timeout_s=1.0):
            chunks.append(chunk)
    assert b"".join(chunks) == b"firstsecond"  # the 0.3 s pause is not a timeout; 1 s of silence is


def test_git_log_failure_names_the_repository_and_stderr(tmp_path):
    from themis_rm.data.git import GitError, iter_commits

    with pytest.raises(GitError, match=r"not-a-repo: git log -z failed with exit 128: fatal"):
        list(iter_commits(tmp_path / "not-a-repo"))
