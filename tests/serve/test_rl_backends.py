"""The integrations' two reward backends agree with each other and with ``themis score``; the HTTP one survives a
busy server (retrying 503 after Retry-After) and fails loudly, with the server's reason and request id, on a 4xx."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.serve.test_app import POOL, TOLERANCE

from themis_rm.integrations import HttpBackend, LocalBackend, RewardServerError, ThemisReward, client_config, trl_inputs
from themis_rm.integrations.verl import compute_score

PAIRS = POOL[20:24]
SYSTEM = {"role": "system", "content": "You are a policy."}


def test_local_and_http_backends_give_themis_scores_under_several_criteria(start_server, offline_scorer):
    server = start_server(max_items_per_request=8)
    prompts = [p for p, _ in PAIRS[:2]] + [[SYSTEM, {"role": "user", "content": p}] for p, _ in PAIRS[2:]]
    responses = [r for _, r in PAIRS]
    criteria = ["security", "none"]
    local = LocalBackend(offline_scorer).score(prompts, responses, criteria)
    remote = HttpBackend(server.url, batch_size=3).score(prompts, responses, criteria)  # two calls of <= 3 items
    np.testing.assert_allclose(remote, local, atol=TOLERANCE)
    want = offline_scorer.score([p for p, _ in PAIRS], responses, criteria="security")  # system turns replaced
    np.testing.assert_allclose(local[:, 0], want, atol=TOLERANCE)


def test_a_busy_server_is_retried_after_retry_after(start_server, model_gate):
    hook, entered, release = model_gate
    server = start_server(before_batch=hook, max_queue_items=1, max_items_per_request=1, max_batch_items=1)
    backend = HttpBackend(server.url, max_retries=5)
    first = threading.Thread(target=backend.score, args=(["p"], ["r"], ["none"]))  # holds the model
    first.start()
    assert entered.wait(10)
    queued = threading.Thread(target=backend.score, args=(["p"], ["r"], ["none"]))  # fills the queue
    queued.start()
    deadline = time.monotonic() + 10
    while server.service.batcher.queued < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    threading.Timer(0.5, release.set).start()  # the server frees up while the third call waits out Retry-After
    rewards = backend.score([PAIRS[0][0]], [PAIRS[0][1]], ["none"])
    first.join(30), queued.join(30)
    assert rewards.shape == (1, 1)
    assert server.service.batcher.counters["rejected_queue_full"] >= 1


def test_a_refused_request_fails_at_once_with_the_servers_reason_and_request_id(start_server):
    server = start_server()
    with pytest.raises(RewardServerError, match=r"HTTP 422 \(request [0-9a-f]+\): criteria\[0\]: unknown criterion"):
        HttpBackend(server.url).score(["p"], ["r"], ["bogus"])


def test_trl_inputs_take_both_dataset_forms_and_tool_turns():
    prompts = ["Write f.", [{"role": "user", "content": [{"type": "text", "text": "Write g."}]}]]
    completions = [
        " def f(): pass",
        [
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "run"}}]},
            {"role": "tool", "content": "ok", "name": "run"},
            {"role": "assistant", "content": "def g(): pass"},
        ],
    ]
    conversations, responses = trl_inputs(prompts, completions)
    assert conversations[0] == "Write f." and responses[0] == " def f(): pass"
    assert [t["role"] for t in conversations[1]] == ["user", "assistant", "tool"] and responses[1] == "def g(): pass"
    with pytest.raises(ValueError, match="completion 0 must end with an assistant turn"):
        trl_inputs([[{"role": "user", "content": "x"}]], [[{"role": "tool", "content": "y"}]])
    assert ThemisReward(LocalBackend(None), "security,runtime").__name__ == "themis_security+runtime"


def test_client_config_comes_from_the_environment_and_needs_one_source(monkeypatch):
    monkeypatch.setenv("THEMIS_REWARD_URL", "http://rm:8000")
    monkeypatch.setenv("THEMIS_REWARD_BATCH_SIZE", "16")
    config = client_config(criteria="security")
    assert (config.url, config.batch_size, config.criteria) == ("http://rm:8000", 16, "security")
    with pytest.raises(Exception, match="exactly one of url or model"):
        client_config(model="/ckpt")
    monkeypatch.delenv("THEMIS_REWARD_URL")
    with pytest.raises(Exception, match="exactly one of url or model"):
        client_config()


def test_verl_compute_score_names_the_missing_prompt(monkeypatch):
    monkeypatch.setenv("THEMIS_REWARD_URL", "http://127.0.0.1:9")
    with pytest.raises(KeyError, match=r"sample 0: extra_info has no 'question'"):
        compute_score("src", "def f(): pass", None, {"index": 3}, prompt_key="question")
