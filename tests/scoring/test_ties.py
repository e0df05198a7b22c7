"""A decision must not depend on ``--engine``: identical token sequences get bit-identical rewards on every path,
so a pair whose chosen and rejected render the same is an exact tie (issue 20, item 1: the default engine had put
identical responses 1 ulp apart, 1 of 4 identical pairs counted as a tie)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from themis_rm.bench.metrics import tie_count
from themis_rm.pairs import PreferencePair
from themis_rm.scoring import Scorer

SYSTEMS = ["Functional_Correctness", "Runtime_Efficiency"]


def pairs() -> list[PreferencePair]:
    """4 pairs with identical chosen and rejected among 12, sharing prompts (so the prefix engine reuses them)."""
    out = []
    for i in range(12):
        prompt = f"Write function {i % 3} that sums a list."
        chosen = f"def total(xs):\n    return sum(xs) + {i}"
        rejected = chosen if i % 3 == 0 else chosen + "\n# slower"
        out.append(PreferencePair(f"p{i}", prompt, chosen, rejected, SYSTEMS[i % 2], "Python", "s"))
    return out


@pytest.mark.parametrize("engine", ["auto", "prefix", "padded"])
def test_identical_responses_are_exact_ties_on_every_engine(tiny_model_dir, engine):
    """A guard for every engine end to end (these pairs tie even without the shared scoring; the split-batch test
    below is the one that failed before it)."""
    scorer = Scorer.from_pretrained(
        str(tiny_model_dir), prompts="open", max_length=512, engine=engine, batch_tokens=200
    )
    scored = scorer.score_pairs(pairs(), criteria="aspect")
    identical = [i for i, p in enumerate(pairs()) if p.chosen == p.rejected]
    assert len(identical) == 4
    assert all(scored.chosen[i] == scored.rejected[i] for i in identical)  # bitwise, not approximately
    frame = pd.DataFrame(
        {
            "chosen_score": scored.chosen,
            "rejected_score": scored.rejected,
            "correct": scored.chosen > scored.rejected,
            "aspect": [p.aspect for p in pairs()],
            "language": "Python",
            "subset": "s",
        }
    )
    assert tie_count(frame) == 4


def test_every_engine_gives_the_same_tie_half_accuracy(tiny_model_dir):
    results = {}
    for engine in ("auto", "prefix", "padded"):
        scorer = Scorer.from_pretrained(
            str(tiny_model_dir), prompts="open", max_length=512, engine=engine, batch_tokens=200
        )
        scored = scorer.score_pairs(pairs(), criteria="aspect")
        credit = np.where(scored.chosen == scored.rejected, 0.5, (scored.chosen > scored.rejected).astype(float))
        results[engine] = credit.tolist()
    assert results["auto"] == results["prefix"] == results["padded"]


def test_copies_split_across_batches_still_get_one_score(tiny_model_dir):
    """The measured failure: two copies in different batches (one padded to a longer neighbour) came out ~1e-6
    apart. Scored once, they are equal, and progress still counts every sequence."""
    scorer = Scorer.from_pretrained(str(tiny_model_dir), max_length=512, engine="padded", batch_tokens=200)
    head = "<|im_start|>user\nWrite f.<|im_end|>\n<|im_start|>assistant\n"
    texts = [head + "x = 1\n" * lines + "<|im_end|>\n" for lines in (14, 10, 10, 3)]  # batches [14, 10] [10, 3]
    seen: list[int] = []
    rewards = scorer.score_rendered(scorer.render_formatted(texts), progress=seen.append)
    assert rewards[1] == rewards[2] and len(set(rewards.tolist())) == 3 and sum(seen) == 4
