"""Token-budget batch planning and the engine's parity with the plain one-sequence-at-a-time HF forward."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from themis_rm.pairs import ScoreRequest
from themis_rm.scoring import Scorer, load_reward_model, plan_batches
from themis_rm.scoring.engine import plan_padded_groups


def test_batches_cover_every_index_once_within_the_token_budget():
    rng = random.Random(0)
    lengths = [rng.randint(1, 300) for _ in range(500)]
    batches = plan_batches(lengths, batch_tokens=1024)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for batch in batches:
        assert max(lengths[i] for i in batch) * len(batch) <= 1024
    assert lengths[batches[0][0]] == max(lengths), "longest first: out-of-memory shows at the start"


def test_oversize_sequence_gets_its_own_batch_and_batch_size_cap_holds():
    batches = plan_batches([5000, 10, 10, 10, 10], batch_tokens=100, max_batch_size=3)
    assert batches == [[0], [1, 2, 3], [4]]


def _plain_forward(model, ids: list[int]) -> float:
    with torch.inference_mode():
        return float(model(input_ids=torch.tensor([ids])).logits[0, 0])


def _requests(n: int, seed: int = 0) -> list[ScoreRequest]:
    rng = random.Random(seed)
    words = ["def", "return", "while", "for", "if", "else", "self", "value", "index", "list", "dict", "yield", "lambda"]
    systems = [None, "Judge runtime efficiency.", "Judge security hardness.\n\n3. **Security**: safe wins."]
    return [
        ScoreRequest(
            prompt=" ".join(rng.choices(words, k=rng.randint(3, 40))),
            response="\n".join(" ".join(rng.choices(words, k=8)) for _ in range(rng.randint(1, 30))),
            system=rng.choice(systems),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tiny_llama_dir"])
def test_scores_equal_plain_forward_including_truncated_rows(request, model_fixture):
    model_dir = request.getfixturevalue(model_fixture)
    scorer = Scorer(load_reward_model(str(model_dir), dtype="fp32", device="cpu"), max_length=160, batch_tokens=2048)
    requests = _requests(60)
    out = scorer.score_requests(requests)
    rendered = scorer.renderer.render_many(requests)
    plain_model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    expected = np.array([_plain_forward(plain_model, r.input_ids) for r in rendered])
    assert out.truncated_rows, "the workload must include truncated rows"
    assert len(out.truncated_rows) < len(requests)
    np.testing.assert_allclose(out.rewards, expected, atol=1e-4, rtol=0)
    assert scorer.engine.stats.batches > 1


def test_rewards_come_back_in_input_order(tiny_model_dir):
    scorer = Scorer(load_reward_model(str(tiny_model_dir), dtype="fp32", device="cpu"), batch_tokens=1024)
    requests = _requests(40, seed=1)
    forward = scorer.score_requests(requests).rewards
    permutation = np.random.default_rng(0).permutation(len(requests))
    shuffled = scorer.score_requests([requests[i] for i in permutation]).rewards
    np.testing.assert_allclose(shuffled, forward[permutation], atol=1e-5)


def _plan_cost(lengths, batches, overhead):
    return sum(max(lengths[i] for i in batch) * len(batch) + overhead for batch in batches)


def _cheapest_split(sorted_lengths, budget, base, overhead):
    """Every split of the sorted lengths into consecutive batches, by brute force."""
    import itertools

    n, best = len(sorted_lengths), float("inf")
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0, *(i + 1 for i, cut in enumerate(cuts) if cut), n]
        batches = [sorted_lengths[a:b] for a, b in itertools.pairwise(bounds)]
        if any(len(b) > 1 and (base + b[0]) * len(b) > budget for b in batches):
            continue
        best = min(best, sum(b[0] * len(b) + overhead for b in batches))
    return best


def test_padded_groups_are_the_cheapest_split_within_the_budget():
    import random

    rng = random.Random(0)
    for _ in range(40):
        lengths = [rng.choice([rng.randint(1, 40), rng.randint(200, 1500)]) for _ in range(rng.randint(1, 9))]
        base, budget, overhead = rng.choice([0, 300]), rng.choice([2000, 6000]), rng.choice([0, 64, 256])
        batches = plan_padded_groups(lengths, budget, base, overhead)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert all(len(b) == 1 or (base + max(lengths[i] for i in b)) * len(b) <= budget for b in batches)
        want = _cheapest_split(sorted(lengths, reverse=True), budget, base, overhead)
        assert _plan_cost(lengths, batches, overhead) == want


def test_padded_groups_keep_a_long_prompt_apart_from_short_ones():
    assert sorted(map(sorted, plan_padded_groups([1500, 40, 50, 45], 16384, base_tokens=560))) == [[0], [1, 2, 3]]
