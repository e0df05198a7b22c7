"""What ``--help`` says is what a new user reads first (issue 20, item 6): engine lists name every engine, list
options show no ``[]``, the judge adapter is named where it runs, and every option with a default shows it."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from themis_rm.cli import app

COMMANDS = ("score", "bench", "rerank", "serve", "train")


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_engine_and_no_empty_list_default(command):
    text = _help(command)
    assert "[]" not in text
    if command != "train":
        assert "prefix, packed or padded" in text


def test_judge_is_listed_as_an_adapter_by_bench_and_not_by_serve():
    assert "or judge" in _help("bench")
    assert "judge" not in _help("serve").split("--adapter-spec")[0].split("--adapter ")[1]


def test_serve_help_shows_the_defaults():
    text = _help("serve")
    for flag, default in (("--port", "8000"), ("--host", "127.0.0.1"), ("--engine", "auto"), ("--max-length", "4096")):
        option = text.split(f"{flag} ", 1)[1].split(" --", 1)[0]
        assert f"(default: {default})" in option, (flag, option)
