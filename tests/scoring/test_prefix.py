"""Shared-prefix reuse: same scores as the plain forward, fewer tokens computed, automatic path choice."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from themis_rm.pairs import ScoreRequest
from themis_rm.render import RenderedSequence
from themis_rm.scoring import Scorer, load_reward_model
from themis_rm.scoring.prefix import PrefixScoringEngine, reuse_ratio

SYSTEMS = [None, "Judge runtime efficiency.", "Judge security.\n\n3. **Security Hardness**: safe code wins."]


def _mixed_requests(seed: int = 0) -> list[ScoreRequest]:
    """Pairs and 4-candidate lists sharing prompts, prompts sharing system prompts, and loners sharing nothing."""
    rng = random.Random(seed)
    words = ["def", "return", "while", "for", "if", "else", "self", "value", "index", "list", "dict", "yield", "lambda"]

    def text(lo, hi):
        return " ".join(rng.choices(words, k=rng.randint(lo, hi)))

    requests = []
    for i in range(18):
        system, prompt = SYSTEMS[i % 3], text(3, 60)
        requests += [ScoreRequest(prompt, text(1, 120), system) for _ in range(2 if i % 2 else 4)]
    requests += [ScoreRequest(text(3, 20), text(1, 40), None) for _ in range(5)]  # share nothing
    rng.shuffle(requests)
    return requests


def _plain(model_dir, rendered) -> np.ndarray:
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.inference_mode():
        return np.array([float(model(input_ids=torch.tensor([r.input_ids])).logits[0, 0]) for r in rendered])


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tiny_llama_dir"])
def test_prefix_reuse_equals_plain_forward_including_truncated_rows(request, model_fixture):
    model_dir = request.getfixturevalue(model_fixture)
    scorer = Scorer(
        load_reward_model(str(model_dir), dtype="fp32", device="cpu"),
        max_length=140,
        batch_tokens=3000,
        engine="prefix",
    )
    requests = _mixed_requests()
    rendered = scorer.renderer.render_many(requests)
    assert any(r.truncated for r in rendered) and not all(r.truncated for r in rendered)
    assert len({r.prefix_len for r in rendered}) > 5, "different prefix lengths in one run"
    out = scorer.score_requests(requests)
    np.testing.assert_allclose(out.rewards, _plain(model_dir, rendered), atol=1e-4, rtol=0)
    assert scorer.path_counts == {"padded": 0, "prefix": 1, "packed": 0}
    assert scorer.engine.stats.batches > 3, "several batches: the token budget splits the work"


def test_reuse_ratio_counts_each_shared_block_once():
    system, prompt = [1, 2, 3, 4], [5, 6]
    sequences = [
        RenderedSequence([*system, *prompt, 7, 8], system_len=4, prefix_len=6),
        RenderedSequence([*system, *prompt, 9], system_len=4, prefix_len=6),
        RenderedSequence([*system, 10, 11, 12], system_len=4, prefix_len=6),
    ]
    # computed: system 4 + prompts 2 + 2 + responses 2 + 1 + 1 = 12 of 8 + 7 + 7 = 22 tokens
    assert reuse_ratio(sequences) == pytest.approx(12 / 22)


def test_auto_engine_reuses_prefixes_for_pairs_and_pads_unrelated_requests(tiny_model_dir):
    scorer = Scorer(load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu"))
    system = "A long shared criterion prompt. " * 30
    pair_requests = [ScoreRequest(f"task {i}", r, system) for i in range(6) for r in ("x = 1", "y = 2")]
    loners = [ScoreRequest(f"task {i} " * 20, "z = 3" * 10) for i in range(6)]
    scorer.score_requests(pair_requests)
    scorer.score_requests(loners)
    assert scorer.path_counts == {"padded": 1, "prefix": 1, "packed": 0}
    assert scorer.work_counters()["engine_paths"] == {"padded": 1, "prefix": 1, "packed": 0}


def test_auto_engine_takes_the_prefix_path_for_a_lone_request_under_a_criterion_prompt(tiny_model_dir):
    """A server answering one request at a time: the kept system state makes reuse pay from the second call on."""
    scorer = Scorer(load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu"))
    system = "A long shared criterion prompt. " * 30
    for i in range(3):
        scorer.score_requests([ScoreRequest(f"task {i}", "x = 1", system)])
    assert scorer.path_counts == {"padded": 0, "prefix": 3, "packed": 0}
    assert scorer.engine.stats.cached_tokens > 0


def test_padded_engine_can_be_forced_and_gives_the_same_scores(tiny_model_dir):
    loaded = load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu")
    requests = _mixed_requests(seed=2)
    padded = Scorer(loaded, engine="padded").score_requests(requests).rewards
    prefix = Scorer(loaded, engine="prefix").score_requests(requests).rewards
    np.testing.assert_allclose(prefix, padded, atol=1e-4, rtol=0)


def test_prefix_engine_computes_fewer_tokens_on_pairs(tiny_model_dir):
    loaded = load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu")
    scorer = Scorer(loaded, engine="prefix")
    system = "Shared criterion prompt with many words in it. " * 20
    requests = [ScoreRequest(f"prompt {i} " * 10, f"answer {j}", system) for i in range(8) for j in range(2)]
    rendered = scorer.renderer.render_many(requests)
    engine = PrefixScoringEngine(loaded.model, loaded.tokenizer.pad_token_id)
    engine.score(rendered)
    assert engine.stats.tokens <= 0.3 * sum(len(r.input_ids) for r in rendered)


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tiny_llama_dir"])
def test_responses_sharing_a_head_are_scored_exactly_and_the_head_once(request, model_fixture):
    """Chosen/rejected that differ late, a response that is a prefix of another, exact duplicates, loners."""
    model_dir = request.getfixturevalue(model_fixture)
    loaded = load_reward_model(str(model_dir), dtype="fp32", device="cpu")
    scorer = Scorer(loaded, max_length=200, engine="prefix")
    body = "def total(xs):\n    result = 0\n    for x in xs:\n        result += x\n"
    requests = [
        ScoreRequest("Sum a list.", body + "    return result", "Judge correctness."),
        ScoreRequest("Sum a list.", body + "    return result - 1", "Judge correctness."),
        ScoreRequest("Sum a list.", body + "    return", "Judge correctness."),
        ScoreRequest("Same twice.", body * 2, None),
        ScoreRequest("Same twice.", body * 2, None),
        ScoreRequest("Truncated pair.", body * 30 + "    return 1", None),  # both cut to max_length
        ScoreRequest("Truncated pair.", body * 30 + "    return 2", None),
        ScoreRequest("Alone.", "x = 1", None),
    ]
    rendered = scorer.renderer.render_many(requests)
    assert rendered[5].truncated and rendered[6].truncated
    engine = PrefixScoringEngine(loaded.model, loaded.tokenizer.pad_token_id, batch_tokens=400)
    rewards = engine.score(rendered)
    np.testing.assert_allclose(rewards, _plain(model_dir, rendered), atol=1e-4, rtol=0)
    naive = sum(len(r.input_ids) for r in rendered)
    # Sharing only system and prompt blocks computes 85% of the tokens here; the heads bring it under half.
    assert engine.stats.tokens < 0.6 * naive
    assert reuse_ratio(rendered) == pytest.approx(engine.stats.tokens / naive)


def test_raw_rollouts_of_one_prompt_share_it_without_split_points(tiny_model_dir):
    """Strings scored as sent (no split points): N rollouts of one RL prompt still compute that prompt once."""
    loaded = load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu")
    scorer = Scorer(loaded, max_length=400)
    tokenizer = loaded.tokenizer
    prompts = [f"Task {t}: write a function that sums the even numbers of a list, with tests. " * 3 for t in range(3)]
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": f"def f(xs): return {k} * sum(xs)"}],
            tokenize=False,
        )
        for prompt in prompts
        for k in range(4)
    ] + ["<|im_start|>user\nalone<|im_end|>\n"]
    rendered = [RenderedSequence(tokenizer(t, add_special_tokens=False)["input_ids"], 0, 0) for t in texts]
    assert scorer.choose_path(rendered) == "prefix"
    engine = PrefixScoringEngine(loaded.model, loaded.tokenizer.pad_token_id)
    rewards = engine.score(rendered)
    np.testing.assert_allclose(rewards, _plain(tiny_model_dir, rendered), atol=1e-4, rtol=0)
    assert engine.stats.tokens < 0.45 * sum(len(r.input_ids) for r in rendered)


def test_clusters_keep_a_long_shared_head_rather_than_a_short_common_one():
    from themis_rm.scoring.prefix import _clusters

    base = tuple(range(100))
    responses = [(*base, 1, 2), (*base, 3, 4), (*base[:10], 7, 7, 7), (50, 51)]
    assert sorted((sorted(members), head) for members, head in _clusters(responses)) == [([0, 1], 100), ([2, 3], 0)]
    duplicates = _clusters([tuple(range(20))] * 3)
    assert [(sorted(m), head) for m, head in duplicates] == [([0, 1, 2], 19)]  # all but the token read at
    assert sorted(_clusters([(1, 2, 3), (1, 2, 4)])[0][0]) == [0, 1]  # a short head is not worth a level: loners


def test_kept_system_states_serve_later_calls_exactly(tiny_model_dir):
    """A second call under the same criterion prompt takes its system block from the LRU: same scores, less work."""
    loaded = load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu")
    scorer = Scorer(loaded, engine="prefix")
    system = "Shared criterion prompt with many words in it. " * 20
    first = [ScoreRequest(f"prompt {i} " * 5, f"answer {i}", system) for i in range(4)]
    second = [ScoreRequest(f"other {i} " * 7, f"reply {i} " * 3, system) for i in range(4)]
    rendered = scorer.renderer.render_many(second)
    system_len = rendered[0].system_len
    engine = PrefixScoringEngine(loaded.model, loaded.tokenizer.pad_token_id, system_cache_size=1)
    engine.score(scorer.renderer.render_many(first))
    before = engine.stats.tokens
    kept = engine.score(rendered)
    assert engine.stats.cached_tokens == system_len and system_len > 100
    assert engine.stats.tokens - before == sum(len(r.input_ids) - system_len for r in rendered)
    np.testing.assert_allclose(kept, _plain(tiny_model_dir, rendered), atol=1e-4, rtol=0)
    engine.clear_cache()
    engine.score(rendered)
    assert engine.stats.cached_tokens == system_len  # cleared: computed again, not taken from the LRU


def test_the_system_state_lru_keeps_at_most_its_size(tiny_model_dir):
    loaded = load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu")
    scorer = Scorer(loaded, engine="prefix")
    engine = PrefixScoringEngine(loaded.model, loaded.tokenizer.pad_token_id, system_cache_size=2)
    for system in ("first prompt " * 9, "second prompt " * 9, "third prompt " * 9):
        engine.score(scorer.renderer.render_many([ScoreRequest("p", "r", system)]))
    assert len(engine._system_states) == 2


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tiny_llama_dir"])
def test_packed_rows_equal_plain_forward(request, model_fixture):
    model_dir = request.getfixturevalue(model_fixture)
    scorer = Scorer(
        load_reward_model(str(model_dir), dtype="fp32", device="cpu"), max_length=140, batch_tokens=600, engine="packed"
    )
    requests = _mixed_requests(seed=3)
    rendered = scorer.renderer.render_many(requests)
    out = scorer.score_requests(requests)
    np.testing.assert_allclose(out.rewards, _plain(model_dir, rendered), atol=1e-4, rtol=0)
    assert scorer.path_counts["packed"] == 1 and scorer.engine.stats.batches > 1


def test_first_fit_packing_respects_capacity_and_keeps_every_sequence():
    from themis_rm.scoring.packed import plan_packs

    lengths = [500, 300, 300, 200, 100, 100, 50, 700]
    packs = plan_packs(lengths, capacity=800)
    assert sorted(i for p in packs for i in p) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in p) <= 800 for p in packs)
    assert len(packs) == 3  # 2250 tokens need at least 3 rows of 800


def test_auto_engine_on_cpu_never_packs(tiny_model_dir):
    scorer = Scorer(load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu"))
    assert scorer.packed_engine is None
    assert scorer.choose_path(scorer.renderer.render_many([ScoreRequest("p", "r")])) == "padded"
