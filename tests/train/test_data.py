"""Training data: schema, criteria prompts, over-length policy (counted, never a crash), step plans."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from themis_rm.criteria import load_pack_toml
from themis_rm.errors import ThemisInputError
from themis_rm.render import ChatRenderer
from themis_rm.train.batching import PairCollator, plan_epoch
from themis_rm.train.data import NO_SYSTEM, SystemPrompts, TrainingPair, load_training_pairs

from .synthetic import write_jsonl


@pytest.fixture(scope="module")
def pack(short_pack_path):
    return load_pack_toml(short_pack_path)


def test_schema_accepts_input_or_prompt_keeps_system_and_canonicalises_aspects(tmp_path, pack):
    rows = [
        {"input": "Sort xs.", "chosen": "sorted(xs)", "rejected": "xs", "aspect": "runtime", "language": "Python"},
        {"prompt": "Sort xs.", "chosen": "sorted(xs)", "rejected": "xs", "system": "Be fast."},
        {"prompt": [{"role": "user", "content": "Hi"}], "chosen": "Hello!", "rejected": "No.", "aspect": "Helpfulness"},
    ]
    loaded = load_training_pairs(write_jsonl(tmp_path / "t.jsonl", rows), pack=lambda: pack)
    first, second, third = loaded.rows
    assert first.aspect == "Runtime_Efficiency" and first.language == "Python" and first.system is None
    assert second.system == "Be fast." and second.prompt == "Sort xs."
    assert third.aspect == "Helpfulness" and third.prompt == [{"role": "user", "content": "Hi"}]


def test_unknown_aspect_error_names_file_row_and_field(tmp_path, pack):
    rows = [
        {"input": "x", "chosen": "a", "rejected": "b"},
        {"input": "x", "chosen": "a", "rejected": "b", "aspect": "Speed"},
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ThemisInputError, match=r"bad\.jsonl.*2.*aspect"):
        load_training_pairs(path, pack=lambda: pack)
    skipped = load_training_pairs(path, pack=lambda: pack, skip_invalid=True)
    assert len(skipped.rows) == 1 and len(skipped.skipped) == 1


def test_rows_with_their_own_system_need_no_prompt_pack(tmp_path):
    rows = [{"input": "x", "chosen": "a", "rejected": "b", "system": "S", "aspect": "anything"}]

    def no_pack():
        raise AssertionError("the pack must not be loaded")

    assert load_training_pairs(write_jsonl(tmp_path / "s.jsonl", rows), pack=no_pack).rows[0].aspect == "anything"


def test_sampled_prompts_are_seeded_per_index_and_epoch_and_own_system_wins(pack):
    prompts = SystemPrompts(pack, seed=3)
    pair = TrainingPair("p", "x", "a", "b", aspect="Runtime_Efficiency")
    first = [prompts.training(pair, i, epoch=0) for i in range(200)]
    assert first == [SystemPrompts(pack, seed=3).training(pair, i, epoch=0) for i in range(200)]
    assert first != [prompts.training(pair, i, epoch=1) for i in range(200)]
    kinds = Counter("none" if p is None else "single" if p.count("**") == 2 else "full" for p in first)
    assert kinds["none"] and kinds["single"] > kinds["full"] > 0
    own = TrainingPair("q", "x", "a", "b", system="Mine.", aspect="Runtime_Efficiency")
    assert {prompts.training(own, i, 0) for i in range(20)} == {"Mine."}
    only_single = SystemPrompts(pack, seed=3, mix=(0.0, 1.0, 0.0))
    assert {only_single.training(pair, i, 0) for i in range(20)} == {pack.training_prompt(("Runtime_Efficiency",))}
    assert prompts.evaluation(pair) == pack.eval_prompt(("Runtime_Efficiency",))
    lengths = prompts.training_lengths([pair] * 200, epoch=0)  # grouping sees the sampled system prompt
    assert lengths == [pair.length_chars + len(p or "") for p in first] and len(set(lengths)) > 2


def test_absent_or_null_system_is_sampled_and_an_empty_one_means_no_system_prompt(tmp_path, pack):
    base = {"input": "Sort xs.", "chosen": "sorted(xs)", "rejected": "xs", "aspect": "runtime"}
    rows = [base, {**base, "system": None}, {**base, "system": ""}, {**base, "system": "  "}, {**base, "system": "S."}]
    loaded = load_training_pairs(write_jsonl(tmp_path / "sys.jsonl", rows), pack=lambda: pack).rows
    assert [p.system for p in loaded] == [None, None, NO_SYSTEM, NO_SYSTEM, "S."]
    prompts = SystemPrompts(pack, seed=0)
    for pair in loaded[:2]:  # sampled: some epochs/indices get a criteria prompt
        assert any(prompts.training(pair, i, epoch) for i in range(20) for epoch in range(2))
    for pair in loaded[2:4]:  # never re-sampled, in training or evaluation
        assert {prompts.training(pair, i, epoch) for i in range(50) for epoch in range(3)} == {None}
        assert prompts.evaluation(pair) is None


def test_a_no_system_pair_is_rendered_without_a_system_turn(qwen_tokenizer, pack):
    pair = TrainingPair("n", "Sort xs.", "sorted(xs)", "xs", system=NO_SYSTEM, aspect="Runtime_Efficiency")
    batch = _collator(qwen_tokenizer, pack, max_length=256)([(0, 0, pair)])
    expected = ChatRenderer(qwen_tokenizer, 256).render("Sort xs.", "sorted(xs)", system=None).input_ids
    assert batch.input_ids[0, : len(expected)].tolist() == expected
    assert "system" not in qwen_tokenizer.decode(expected)


def _collator(tokenizer, pack, **options):
    renderer = ChatRenderer(tokenizer, options.pop("max_length", 48), options.pop("prompt_overflow", "truncate"))
    return PairCollator(renderer, SystemPrompts(pack, seed=0), tokenizer.pad_token_id, **options)


LONG = "x = 1\n" * 200


def test_over_length_pairs_are_truncated_and_counted(qwen_tokenizer, pack):
    pairs = [TrainingPair("a", "p", LONG, "y = 2", system="S"), TrainingPair("b", "p", "z", "w", system="S")]
    batch = _collator(qwen_tokenizer, pack)([(0, i, p) for i, p in enumerate(pairs)])
    assert batch.counts["truncated_pairs"] == 1 and batch.counts["truncated_tokens"] > 0
    assert batch.pair_weight.tolist() == [1.0, 1.0] and batch.input_ids.shape[1] <= 48


def test_over_length_pairs_are_dropped_and_counted_with_drop_policy(qwen_tokenizer, pack):
    pairs = [TrainingPair("a", "p", LONG, "y = 2", system="S"), TrainingPair("b", "p", "z", "w", system="S")]
    batch = _collator(qwen_tokenizer, pack, overflow="drop")([(0, i, p) for i, p in enumerate(pairs)])
    assert batch.counts["dropped_too_long"] == 1 and batch.counts["trained_pairs"] == 1
    assert batch.pair_indices == [1] and batch.pair_weight.tolist() == [1.0]


def test_pairs_whose_sides_render_the_same_are_dropped_and_counted_under_every_policy(qwen_tokenizer, pack):
    """Issue 20, item 4: cutting the end of two long responses that differ only after the cut (5 of 21 mined pairs
    at 4096 tokens) left identical tokens, trained as a pair the label says is not a tie."""
    pairs = [
        TrainingPair("cut", "p", LONG + "return a + b", LONG + "return a - b", system="S"),
        TrainingPair("same", "p", "z = 1", "z = 1", system="S"),
        TrainingPair("fine", "p", "z = 1", "w = 2", system="S"),
    ]
    for options in ({}, {"overflow": "drop"}, {"evaluation": True}):
        batch = _collator(qwen_tokenizer, pack, **options)([(0, i, p) for i, p in enumerate(pairs)])
        assert batch.counts["dropped_identical_after_truncation"] == 1, options
        assert batch.counts["dropped_identical_pairs"] == 1 and batch.counts["trained_pairs"] == 1
        assert batch.pair_indices == [2] and batch.identical_indices == [0, 1]


def test_eval_leaves_identical_pairs_out_of_the_denominator():
    import numpy as np

    from themis_rm.train.evaluate import EvalResult

    result = EvalResult(
        np.array([1.0, 0.5, 0.2]), np.array([0.0, 0.5, 0.9]), ["a", "a", "b"], np.array([0, 1, 0], bool)
    )
    metrics = result.metrics()
    assert (metrics["eval/pairs"], metrics["eval/identical"], metrics["eval/accuracy"]) == (2, 1, 0.5)
    assert metrics["eval/ties"] == 0 and metrics["eval/accuracy/a"] == 1.0


def test_a_system_prompt_that_leaves_no_room_is_dropped_and_counted_never_raised(qwen_tokenizer, pack):
    huge_system = "Rule. " * 100
    pairs = [TrainingPair("a", "p", "z", "w", system=huge_system)]
    for policy in ("truncate", "error"):
        batch = _collator(qwen_tokenizer, pack, prompt_overflow=policy)([(0, 0, pairs[0])])
        assert batch.counts["dropped_prompt_too_long"] == 1 and batch.counts["placeholder_batches"] == 1
        assert batch.pair_weight.tolist() == [0.0] and batch.lm_index.numel() == 0


def test_an_over_long_user_prompt_is_cut_under_truncate_and_dropped_under_error(qwen_tokenizer, pack):
    pair = TrainingPair("a", "Explain this. " * 100, "z = 1", "w = 2", system="S")
    cut = _collator(qwen_tokenizer, pack)([(0, 0, pair)])
    assert cut.counts["prompt_truncated_pairs"] == 1 and cut.counts["truncated_pairs"] == 1
    assert cut.pair_weight.tolist() == [1.0] and cut.input_ids.shape[1] <= 48
    dropped = _collator(qwen_tokenizer, pack, prompt_overflow="error")([(0, 0, pair)])
    assert dropped.counts["dropped_prompt_too_long"] == 1 and dropped.pair_weight.tolist() == [0.0]


def test_step_plan_covers_each_pair_once_groups_lengths_and_balances_ranks():
    lengths = [(i * 37) % 101 for i in range(100)]
    plan = plan_epoch(lengths, batch_size=16, micro_batch_size=2, world_size=2, seed=0, epoch=0)
    assert len(plan) == 6  # 100 // 16; the 4 left over wait for the next epoch's shuffle
    seen = [i for step in plan for rank in step for micro in rank for i in micro]
    assert len(seen) == len(set(seen)) == 96
    for step in plan:
        assert [len(rank) for rank in step] == [4, 4]  # grad_accum micro-batches per process
        ranges = sorted((min(lengths[i] for i in m), max(lengths[i] for i in m)) for rank in step for m in rank)
        assert all(hi <= next_lo for (_, hi), (next_lo, _) in itertools.pairwise(ranges))  # no overlap
        short_first = [rank[0] for rank in step]
        assert {max(lengths[i] for i in m) for m in short_first} <= {hi for _, hi in ranges[:2]}  # dealt round-robin
    assert plan == plan_epoch(lengths, batch_size=16, micro_batch_size=2, world_size=2, seed=0, epoch=0)
    assert plan != plan_epoch(lengths, batch_size=16, micro_batch_size=2, world_size=2, seed=0, epoch=1)


def test_training_rows_round_trip_through_json(tmp_path, pack):
    row = {"input": "x", "chosen": "a", "rejected": "b", "aspect": "Security_Hardness"}
    path = tmp_path / "one.json"
    path.write_text(json.dumps([row]))
    assert load_training_pairs(path, pack=lambda: pack).rows[0].aspect == "Security_Hardness"
