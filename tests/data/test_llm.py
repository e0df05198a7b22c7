"""LLM stages against a real OpenAI-compatible server on 127.0.0.1: cache, retries, concurrency, parsers, keep rule."""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytest.importorskip("openai")
pytest.importorskip("jinja2")
pytest.importorskip("datatrove")

from themis_rm.data.base import Document
from themis_rm.data.config import InstructionConfig, LLMConfig, PairwiseJudgeConfig, ReviewConfig
from themis_rm.data.llm import ChatRequest, EndpointConfig, LLMClient, LLMRequestsFailed
from themis_rm.data.llm_steps import BugIntroductionStep, CommitReviewStep, InstructionStep, PairwiseJudgeStep
from themis_rm.data.prompts import parse_rating, parse_tag, parse_verdict, strip_fence
from themis_rm.errors import ThemisInputError

NEW = "def total(xs):\n    return sum(xs)  # NEW\n"
OLD = "def total(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t  # OLD\n"
FC, RE = "Functional_Correctness", "Runtime_Efficiency"


def record(doc_id: str = "r1", aspects=(FC, RE)) -> Document:
    meta = {"old_contents": OLD, "message": "Use sum() for totals", "language": "Python", "path": "t.py"}
    meta |= {"repo": "acme/t", "diff": "-old\n+new\n", "aspects": list(aspects)}
    return Document(NEW, doc_id, metadata=meta)


def endpoint(url: str, **options) -> EndpointConfig:
    return EndpointConfig(model="judge", base_url=url, backoff_s=0.01, **options)


def run_step(step, docs):
    kept = list(step.run(iter(docs)))
    stats = {k: v.total for k, v in step.stats.stats.items()}
    return kept, stats


# ----------------------------------------------------------------------------------------------- client
def test_cache_answers_a_rerun_without_asking_again(tmp_path, llm_server):
    server, url = llm_server(lambda prompt, attempt: f"echo {prompt}")
    requests = [ChatRequest.user(f"q{i}") for i in range(5)]
    first = LLMClient(endpoint(url), tmp_path).complete_all(requests)
    assert [a.text for a in first] == [f"echo q{i}" for i in range(5)] and len(server.bodies) == 5
    again = LLMClient(endpoint(url), tmp_path)
    assert [a.text for a in again.complete_all(requests)] == [a.text for a in first]
    assert len(server.bodies) == 5 and again.stats.cache_hits == 5
    LLMClient(endpoint(url, temperature=0.0), tmp_path).complete_all(requests[:1])  # another setting: asked again
    assert len(server.bodies) == 6
    assert server.bodies[0]["seed"] == 77 and server.bodies[0]["temperature"] == 0.8


def test_transient_errors_are_retried_and_client_errors_are_not(tmp_path, llm_server):
    def reply(prompt, attempt):
        if prompt == "flaky":
            return (503, None) if attempt < 3 else "ok"
        return (400, None) if prompt == "bad" else (500, None)

    server, url = llm_server(reply)
    client = LLMClient(endpoint(url, retries=3), tmp_path)
    flaky, bad, down = client.complete_all([ChatRequest.user(p) for p in ("flaky", "bad", "down")])
    assert flaky.text == "ok" and flaky.retries == 2
    assert bad.text is None and "BadRequest" in bad.error and server.attempts["bad"] == 1
    assert down.text is None and server.attempts["down"] == 4
    assert client.stats.request_failures == 2
    assert len(list(tmp_path.rglob("*.json"))) == 1  # only the answered request is cached


def test_unreadable_answers_fail_only_their_own_request(tmp_path, llm_server):
    def reply(prompt, attempt):
        if prompt == "no choices":
            return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "judge"}).encode()
        return b"{not json" if prompt == "garbage" else "fine"

    _, url = llm_server(reply)
    client = LLMClient(endpoint(url, retries=1), tmp_path)
    answers = client.complete_all([ChatRequest.user(p) for p in ("no choices", "garbage", "ok")])
    assert [a.text for a in answers] == [None, None, "fine"]
    assert all(a.error for a in answers[:2]) and client.stats.request_failures == 2
    assert [f.key for f in client.stats.failures] == [
        client.cache_key(ChatRequest.user(p)) for p in ("no choices", "garbage")
    ]
    assert len(list(tmp_path.rglob("*.json"))) == 1


def test_concurrency_limit_is_respected(llm_server):
    server, url = llm_server(lambda prompt, attempt: "ok", delay_s=0.05)
    LLMClient(endpoint(url, concurrency=3)).complete_all([ChatRequest.user(str(i)) for i in range(12)])
    assert server.max_in_flight == 3


def test_endpoint_needs_a_model_and_sane_limits():
    with pytest.raises(ThemisInputError, match="model is empty"):
        LLMClient(EndpointConfig())
    with pytest.raises(ThemisInputError, match="concurrency"):
        EndpointConfig(model="m", concurrency=0)


# ---------------------------------------------------------------------------------------------- parsers
@pytest.mark.parametrize(
    ("text", "value", "mode"),
    [
        ("[EVALUATION]x[/EVALUATION][JUDGEMENT]A[/JUDGEMENT]", "A", "tag"),
        ("[JUDGEMENT]B[/JUDGEMENT] on reflection [judgement] tie [/judgement]", "TIE", "tag"),
        ("[JUDGEMENT] **Response B** [/JUDGEMENT]", "B", "tag"),
        ("<think>[JUDGEMENT]A[/JUDGEMENT]</think>[JUDGEMENT]B", "B", "unclosed"),
        ("Both are fine. Verdict: B", "B", "loose"),
        ("Final answer: **A**", "A", "loose"),
        ("I cannot decide.", None, "failed"),
        ("[JUDGEMENT]C[/JUDGEMENT]", None, "failed"),
    ],
)
def test_verdict_parser_is_tolerant_and_reports_how(text, value, mode):
    parsed = parse_verdict(text)
    assert (parsed.value, parsed.mode) == (value, mode)


def test_rating_tag_and_fence_parsers():
    assert parse_rating("[RATING] 4 [/RATING]").value == "4"
    assert parse_rating("[RATING]9[/RATING] Rating: 2").value == "2"
    assert parse_rating("[RATING]9[/RATING]").value is None
    assert parse_tag("[INSTRUCTION]\nDo it.\n[/INSTRUCTION]", "INSTRUCTION").value == "Do it."
    assert strip_fence("```python\nx = 1\n```") == "x = 1"
    assert strip_fence("x = 1\n") == "x = 1"


# ------------------------------------------------------------------------------------------------ steps
def judge_reply(prefer: str):
    """A judge that always prefers the response containing ``prefer`` (``# NEW`` or ``# OLD``)."""

    def reply(prompt, attempt):
        a = prompt.split("[RESPONSE A]")[1].split("[/RESPONSE A]")[0]
        winner = "A" if prefer in a else "B"
        return f"[EVALUATION]fine[/EVALUATION]\n[JUDGEMENT]{winner}[/JUDGEMENT]"

    return reply


def judge_config(url: str, cache, **rule) -> LLMConfig:
    return LLMConfig(endpoint=endpoint(url), cache_dir=str(cache), judge=PairwiseJudgeConfig(True, **rule))


def test_judge_votes_with_seeded_ab_order_and_keeps_by_rule(tmp_path, llm_server):
    server, url = llm_server(judge_reply("# NEW"))
    kept, _ = run_step(PairwiseJudgeStep(judge_config(url, tmp_path)), [record()])
    assert len(kept) == 1 and kept[0].metadata["aspects"] == [FC, RE]
    tally = kept[0].metadata["judge"][FC]
    assert (tally["matches"], tally["contradictions"], tally["ties"], tally["errors"]) == (8, 0, 0, 0)
    shown_first = ["# NEW" in b["messages"][-1]["content"].split("[RESPONSE B]")[0] for b in server.bodies]
    assert 0 < sum(shown_first) < len(shown_first)  # both orders are used
    assert sorted(b["seed"] for b in server.bodies) == sorted([77 + v for v in range(8)] * 2)
    server2, url2 = llm_server(judge_reply("# NEW"))
    run_step(PairwiseJudgeStep(judge_config(url2, tmp_path / "other")), [record()])
    asked = sorted((b["seed"], b["messages"][-1]["content"]) for b in server.bodies)
    assert sorted((b["seed"], b["messages"][-1]["content"]) for b in server2.bodies) == asked  # same seeded orders


def test_judge_drops_on_contradictions_and_records_parse_failures(tmp_path, llm_server):
    _, url = llm_server(judge_reply("# OLD"))
    kept, stats = run_step(PairwiseJudgeStep(judge_config(url, tmp_path)), [record()])
    assert kept == [] and stats["dropped_judge_rejected"] == 1

    _, url = llm_server(lambda p, a: "I refuse to judge.")
    kept, stats = run_step(PairwiseJudgeStep(judge_config(url, tmp_path / "b", min_matches=1)), [record()])
    assert kept == [] and stats["judge_parse_failures"] == 16
    _, url = llm_server(judge_reply("# NEW"))
    lenient = judge_config(url, tmp_path / "c", votes=4, min_matches=4)
    kept, _ = run_step(PairwiseJudgeStep(lenient), [record()])
    assert kept[0].metadata["judge"][RE]["parse"] == ["tag"] * 4


def test_review_keeps_aspects_rated_high_enough(tmp_path, llm_server):
    def reply(prompt, attempt):
        rating = 5 if "**Runtime Efficiency**" in prompt else 2
        return f"[SUMMARY]s[/SUMMARY]\n[RATING]{rating}[/RATING]"

    _, url = llm_server(reply)
    config = LLMConfig(endpoint=endpoint(url), cache_dir=str(tmp_path), review=ReviewConfig(True, min_rating=4))
    kept, stats = run_step(CommitReviewStep(config), [record(), record("r2", aspects=[FC])])
    assert [d.id for d in kept] == ["r1"] and kept[0].metadata["aspects"] == [RE]
    assert kept[0].metadata["review"][FC]["rating"] == 2 and stats["dropped_review_rating"] == 1


def test_instruction_synthesis_and_problem_recovery(tmp_path, llm_server):
    server, url = llm_server(lambda p, a: "[INSTRUCTION]Sum a list.[/INSTRUCTION][PROBLEM_STATEMENT]Add up.")
    config = LLMConfig(endpoint=endpoint(url), cache_dir=str(tmp_path), instruction=InstructionConfig(True))
    kept, _ = run_step(InstructionStep(config), [record(f"r{i}") for i in range(6)])
    assert {d.metadata["instruction"] for d in kept} == {"Sum a list."}
    assert len({d.metadata["instruction_style"] for d in kept}) > 1
    recovery = LLMConfig(
        endpoint=endpoint(url), cache_dir=str(tmp_path), instruction=InstructionConfig(True, mode="recovery")
    )
    kept, _ = run_step(InstructionStep(recovery), [record(f"r{i}") for i in range(6)])
    assert {d.metadata["instruction"] for d in kept} == {"Add up."}
    firsts = {"# NEW" in b["messages"][-1]["content"].split("Program 2")[0] for b in server.bodies[-6:]}
    assert firsts == {True, False}  # the two versions are shown in both orders


def test_bug_introduction_adds_a_variant_and_counts_failures(tmp_path, llm_server):
    def reply(prompt, attempt):
        if "return sum(xs)" in prompt and "acme" not in prompt:
            return "[BUGGY_CODE]\n```python\ndef total(xs):\n    return sum(xs[1:])\n```\n[/BUGGY_CODE]"
        return "no code"

    _, url = llm_server(reply)
    config = LLMConfig(endpoint=endpoint(url), cache_dir=str(tmp_path))
    config.bug.enabled = True
    kept, stats = run_step(BugIntroductionStep(config), [record(), record("r2", aspects=[RE])])
    assert [d.id for d in kept] == ["r1", "r2"]
    assert kept[0].metadata["buggy_code"] == "def total(xs):\n    return sum(xs[1:])"
    assert "buggy_code" not in kept[1].metadata and stats["llm_requests"] == 1


def review_reply(fail_first: set[str]):
    """Rates 5, except that the first ask of a prompt mentioning one of ``fail_first`` gets a 500."""

    def reply(prompt, attempt):
        if attempt == 1 and any(word in prompt for word in fail_first):
            return (500, None)
        return "[SUMMARY]s[/SUMMARY]\n[RATING]5[/RATING]"

    return reply


def test_failed_requests_fail_the_task_and_a_rerun_asks_only_them(tmp_path, llm_server):
    server, url = llm_server(review_reply({"**Runtime Efficiency**"}))
    config = LLMConfig(endpoint=endpoint(url, retries=0), cache_dir=str(tmp_path), review=ReviewConfig(True))
    docs = [record("r1"), record("r2", aspects=[FC])]
    step, kept = CommitReviewStep(config), []
    with pytest.raises(LLMRequestsFailed, match=r"llm_review \(task 0\): 1 requests failed") as info:
        kept.extend(step.run(iter(docs)))
    assert [d.id for d in kept] == ["r1", "r2"]  # everything before the failure went downstream
    assert step.stats["llm_request_failures"].total == 1 and "run the same command again" in str(info.value)
    failures = tmp_path / "failures" / "llm_review.00000.jsonl"
    assert [json.loads(line)["error"].startswith("InternalServerError") for line in failures.open()] == [True]
    asked = Counter(server.attempts)

    kept, stats = run_step(CommitReviewStep(config), [record("r1"), record("r2", aspects=[FC])])
    assert [d.metadata["aspects"] for d in kept] == [[FC, RE], [FC]]
    assert stats["llm_cache_hits"] == 2 and stats.get("llm_request_failures", 0) == 0
    retried = Counter(server.attempts) - asked
    assert list(retried.values()) == [1] and "**Runtime Efficiency**" in next(iter(retried))  # only the failed one
    assert not failures.exists()  # the stale list is removed once nothing fails


def test_request_failures_can_be_accepted_instead_of_retried(tmp_path, llm_server):
    _, url = llm_server(review_reply({"**Runtime Efficiency**"}))
    config = LLMConfig(endpoint=endpoint(url, retries=0), cache_dir=str(tmp_path), review=ReviewConfig(True))
    config.fail_on_request_errors = False
    kept, stats = run_step(CommitReviewStep(config), [record("r1")])
    assert kept[0].metadata["aspects"] == [FC] and kept[0].metadata["review"][RE]["rating"] is None
    assert stats["llm_request_failures"] == 1 and stats["review_failures"] == 1
    assert (tmp_path / "failures" / "llm_review.00000.jsonl").is_file()


def test_llm_config_collects_problems():
    with pytest.raises(ThemisInputError) as info:
        LLMConfig(
            instruction=InstructionConfig(mode="guess", styles=["haiku"]),
            judge=PairwiseJudgeConfig(votes=2, min_matches=3),
        )
    assert "mode" in str(info.value) and "haiku" in str(info.value) and "min_matches" in str(info.value)
