"""One conversational-input rule on every endpoint (``themis_rm.conversation``): text parts joined, unknown keys
ignored, and under criteria the policy's system turn replaced by the criterion prompt (reported); without criteria
the conversation is scored as given."""

from __future__ import annotations

import numpy as np
import pytest

from tests.serve.test_app import POOL, TOLERANCE, client

from themis_rm.conversation import plain_turns, text_content, without_system
from themis_rm.pairs import ScoreRequest

PROMPT, RESPONSE = POOL[3]
SYSTEM_TURN = {"role": "system", "content": "You are a helpful assistant."}


def test_text_parts_are_joined_with_a_newline_and_other_parts_refused():
    parts = [{"type": "text", "text": "Write f."}, {"type": "text", "text": "Use Python."}]
    assert text_content(parts) == "Write f.\nUse Python."
    assert text_content(None) == "" and text_content("plain") == "plain"
    with pytest.raises(ValueError, match="content part 1"):
        text_content([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}])


def test_unknown_keys_are_dropped_and_system_turns_give_way_only_to_a_criterion_prompt():
    turns = plain_turns([SYSTEM_TURN, {"role": "user", "content": "U", "name": "alice"}])
    assert turns == [{"role": "system", "content": SYSTEM_TURN["content"]}, {"role": "user", "content": "U"}]
    assert without_system(turns, None) == (turns, False)
    assert without_system(turns, "criterion prompt") == ([{"role": "user", "content": "U"}], True)
    with pytest.raises(ValueError, match="message 0"):
        plain_turns([{"content": "no role"}])


def test_trl_style_turns_score_like_plain_strings(start_server, offline_scorer):
    server = start_server()
    trl_turn = {"role": "user", "content": [{"type": "text", "text": PROMPT}], "name": "u1", "tool_calls": None}
    item = {"messages": [trl_turn], "response": [{"type": "text", "text": RESPONSE}]}
    with client(server) as http:
        got = http.post("/v1/rewards", json={"items": [item], "criteria": "security"}).json()
    want = offline_scorer.score([PROMPT], [RESPONSE], criteria="security")
    assert got["results"][0]["scores"]["Security_Hardness"] == pytest.approx(want[0], abs=TOLERANCE)
    assert got["results"][0]["replaced_system_turn"] is False


def test_a_policy_system_turn_is_replaced_under_criteria_and_kept_without(start_server, offline_scorer):
    server = start_server()
    item = {"messages": [SYSTEM_TURN, {"role": "user", "content": PROMPT}], "response": RESPONSE}
    with client(server) as http:
        under = http.post("/v1/rewards", json={"items": [item], "criteria": ["security", "none"]}).json()
    security, none = (under["results"][0]["scores"][k] for k in ("Security_Hardness", "none"))
    assert security == pytest.approx(offline_scorer.score([PROMPT], [RESPONSE], "security")[0], abs=TOLERANCE)
    as_given = offline_scorer.score_requests(
        [ScoreRequest([SYSTEM_TURN, {"role": "user", "content": PROMPT}], RESPONSE)]
    )
    assert none == pytest.approx(as_given.rewards[0], abs=TOLERANCE)
    assert under["results"][0]["replaced_system_turn"] is True
    assert server.service.health()["counters"]["policy_system_turns_replaced"] == 1


def test_get_reward_rerender_follows_the_same_rule(start_server, offline_scorer):
    """A policy string with a system turn: replaced under --criteria, exactly as /v1/rewards does it."""
    server = start_server(rerender=True, criteria="security")
    query = (
        f"<|im_start|>system\n{SYSTEM_TURN['content']}<|im_end|>\n<|im_start|>user\n{PROMPT}<|im_end|>\n"
        f"<|im_start|>assistant\n{RESPONSE}<|im_end|>\n"
    )
    item = {"messages": [SYSTEM_TURN, {"role": "user", "content": PROMPT}], "response": RESPONSE}
    with client(server) as http:
        by_query = http.post("/get_reward", json={"query": [query]}).json()["rewards"]
        by_item = http.post("/v1/rewards", json={"items": [item]}).json()["results"][0]["scores"]["Security_Hardness"]
    np.testing.assert_allclose(by_query, [by_item], atol=TOLERANCE)
