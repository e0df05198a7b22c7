"""Generative judges against a real loopback HTTP server imitating ``POST /v1/chat/completions``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.conftest import JUDGE_SCRIPTS as SCRIPTS

from themis_rm.errors import ThemisInputError
from themis_rm.pairs import ScoreRequest
from themis_rm.scoring.judge import (
    GenerativeJudge,
    JudgeConfig,
    parse_boxed,
    parse_json_score,
    parse_last_number,
    parse_outputs,
    parse_score_range,
    reparse_raw,
)


def _judge(base_url: str, **overrides) -> GenerativeJudge:
    """A judge of the loopback server: quick retries (the server fails on purpose), a fixed seed, short answers."""
    endpoint = dict(model="judge-tiny", base_url=base_url, api_key_env="THEMIS_TEST_JUDGE_KEY", concurrency=2)
    patience = dict(retries=2, backoff_s=0.01, timeout_s=5.0)
    return GenerativeJudge(JudgeConfig(**(endpoint | patience | dict(seed=1234, max_tokens=64) | overrides)))


def _requests(*scripts: str) -> list[ScoreRequest]:
    return [ScoreRequest(f"Write f number {i}.", f"def f(): pass  # SCRIPT:{s}") for i, s in enumerate(scripts)]


def test_parsers_read_the_last_match():
    assert parse_boxed(SCRIPTS["boxed7"]) == 7.0
    assert parse_boxed("\\boxed{8.5} then \\boxed{-1}") == -1.0
    assert parse_boxed("<think>\\boxed{3}</think> the answer is nine") is None
    assert parse_json_score(SCRIPTS["json3"]) == 3.0
    assert parse_json_score('```json\n{"score": "4.5"}\n```') == 4.5
    assert parse_json_score('{"rating": 4}') is None
    assert parse_last_number("Score: 4 of 5, final 6.") == 6.0
    assert parse_last_number("no digits") is None


def test_scores_in_input_order_with_nan_and_counters(judge_server):
    server, base_url = judge_server
    requests = _requests("boxed7", "garbage", "boxed85", "too_high", "boxed7")
    out = _judge(base_url).score_requests(requests, criteria_text="Runtime efficiency")
    assert out.rewards[[0, 2, 4]].tolist() == [7.0, 8.5, 7.0]
    assert np.isnan(out.rewards[[1, 3]]).all()
    assert (out.parse_failures, out.out_of_range, out.request_failures) == (1, 1, 0)
    assert out.raw_outputs == [SCRIPTS[s] for s in ("boxed7", "garbage", "boxed85", "too_high", "boxed7")]
    body = server.bodies[0]
    assert (body["seed"], body["model"], body["temperature"], body["max_tokens"]) == (1234, "judge-tiny", 0.0, 64)
    assert all(b["seed"] == 1234 for b in server.bodies)
    assert set(server.auth) == {"Bearer sk-loopback"}
    content = body["messages"][0]["content"]
    assert "Runtime efficiency" in content and "[PROMPT]\nWrite f number" in content and "\\boxed{N}" in content


def test_json_parser_and_request_system_prompt_as_criterion(judge_server):
    server, base_url = judge_server
    request = ScoreRequest("Sort xs.", "sorted(xs)  # SCRIPT:json3", system="Judge memory efficiency.")
    out = _judge(base_url, parser="json").score_requests([request])
    assert out.rewards.tolist() == [3.0]
    assert "Judge memory efficiency." in server.bodies[0]["messages"][0]["content"]


def test_concurrency_limit_is_respected(judge_server):
    server, base_url = judge_server
    server.delay_s = 0.1
    out = _judge(base_url, concurrency=3).score_requests(_requests(*["boxed7"] * 9))
    assert out.rewards.tolist() == [7.0] * 9
    assert 2 <= server.max_in_flight <= 3


def test_server_errors_are_retried_then_counted(judge_server):
    server, base_url = judge_server
    out = _judge(base_url, retries=1).score_requests(_requests("flaky", "down", "bad_request", "boxed85"))
    assert out.rewards[0] == 5.0 and out.rewards[3] == 8.5
    assert np.isnan(out.rewards[1:3]).all()
    assert server.attempts["flaky"] == 2 and server.attempts["down"] == 2, "5xx: one retry"
    assert server.attempts["bad_request"] == 1, "4xx other than 429: no retry"
    assert (out.retries, out.request_failures, out.parse_failures) == (2, 2, 0)
    assert "InternalServerError" in out.errors[1] and "BadRequestError" in out.errors[2]


def test_an_answer_without_choices_is_counted_and_a_request_without_answer_is_unreachable(judge_server):
    """An empty ``choices`` list used to raise IndexError and kill the whole batch."""
    _, base_url = judge_server
    out = _judge(base_url, retries=0).score_requests(_requests("no_choices", "down", "boxed7"))
    assert np.isnan(out.rewards[:2]).all() and out.rewards[2] == 7.0
    assert (out.request_failures, out.unreachable, out.parse_failures) == (2, 1, 0)
    assert "EmptyChoices" in out.errors[0] and out.first_unreachable == out.errors[1]
    assert out.counters["unreachable"] == 1


def test_raw_outputs_saved_and_reparsed(judge_server, tmp_path):
    _, base_url = judge_server
    out = _judge(base_url).score_requests(_requests("json3", "boxed7", "down"))
    path = out.save_raw(tmp_path / "raw" / "judge.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[0]["raw"] == SCRIPTS["json3"] and rows[0]["reward"] is None
    assert rows[1]["reward"] == 7.0 and rows[2]["error"].startswith("InternalServerError")
    again = reparse_raw(path, parser="json")
    assert again.rewards[0] == 3.0 and math.isnan(again.rewards[1]) and math.isnan(again.rewards[2])
    assert (again.parse_failures, again.request_failures) == (1, 1)


def test_bad_config_lists_every_problem():
    with pytest.raises(ThemisInputError, match=r"concurrency must be.*parser must be one of boxed.*\['answer'\]"):
        JudgeConfig(model="m", concurrency=0, parser="regex", template="{prompt} {answer} {response}")
    with pytest.raises(ThemisInputError, match=r"must contain \{response\}"):
        JudgeConfig(model="m", template="{prompt}")


def test_score_range_parse_keeps_zero_as_a_bound_and_a_zero_score_valid():
    assert parse_score_range("0,10") == (0.0, 10.0)
    assert parse_score_range(" -1.5 , 0 ") == (-1.5, 0.0)
    assert parse_score_range("none") is None and parse_score_range(None) is None
    zero = ["\\boxed{0}"]
    assert parse_outputs(zero, [None], "boxed", parse_score_range("0,10")).rewards.tolist() == [0.0]
    default = parse_outputs(zero, [None], "boxed", JudgeConfig(model="m").score_range)
    assert np.isnan(default.rewards[0]) and default.out_of_range == 1, "the default 1-10 range drops a 0"


@pytest.mark.parametrize("spec", ["10,0", "0", "0,10,20", "low,high", "nan,1", ""])
def test_bad_score_range_names_the_flag_and_value(spec):
    with pytest.raises(ThemisInputError, match=rf"--judge-score-range must be 'LOW,HIGH'.* got '{spec}'"):
        parse_score_range(spec)
