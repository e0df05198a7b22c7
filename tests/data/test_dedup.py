"""Exact and MinHash near-duplicate removal through the three datatrove steps."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("datasketch")
pytest.importorskip("datatrove")

from themis_rm.data.base import Document
from themis_rm.data.dedup import (
    DedupClusters,
    DedupConfig,
    DedupFilter,
    DedupSignatures,
    MinHashConfig,
    shingles,
)
from themis_rm.errors import ThemisInputError

VOCAB = [f"w{i}" for i in range(2000)]


def code(seed: int, words: int = 1000) -> str:
    rng = random.Random(seed)
    return "\n".join(" ".join(rng.choice(VOCAB) for _ in range(10)) for _ in range(words // 10))


def edit(text: str, n: int, seed: int) -> str:
    words = text.split(" ")
    rng = random.Random(seed)
    for i in rng.sample(range(len(words)), n):
        words[i] = "changed"
    return " ".join(words)


def record(doc_id: str, diff: str, date: str = "2019-01-01", old: str = "old", new: str | None = None) -> Document:
    return Document(new or f"new {doc_id}", doc_id, metadata={"old_contents": old, "diff": diff, "date": date})


def dedup(tmp_path, shards: list[list[Document]], config: DedupConfig | None = None) -> tuple[list[str], dict]:
    """Run signatures per shard (as separate tasks), clusters once, then the filter; returns kept ids and drops."""
    config = config or DedupConfig()
    for rank, docs in enumerate(shards):
        assert len(list(DedupSignatures(str(tmp_path), config).run(iter(docs), rank, len(shards)))) == len(docs)
    list(DedupClusters(str(tmp_path), config).run(None, 0, 1))
    step = DedupFilter(str(tmp_path))
    kept = [d.id for docs in shards for d in step.run(iter(docs))]
    return kept, {k: v.total for k, v in step.stats.stats.items() if k.startswith("dropped_")}


def test_shingles_of_short_and_empty_texts():
    assert shingles("a b c", 20) == {b"a b c"}
    assert shingles("  ;; ", 20) == set()
    assert len(shingles(" ".join(map(str, range(25))), 20)) == 6


def test_exact_and_near_duplicates_keep_the_earliest_across_tasks(tmp_path):
    base, other = code(1), code(2)
    shard0 = [
        record("b-late-copy", base, date="2020-01-01"),
        record("other", other),
        record("near", edit(base, 2, seed=3), date="2019-06-01"),
    ]
    shard1 = [
        record("a-original", base, date="2018-01-01", old="o", new="n"),
        record("exact", base, date="2019-01-01", old="o", new="n"),  # same old/new contents as a-original
        record("far", edit(base, 100, seed=4)),  # 10% of words changed: most 20-word shingles differ
    ]
    kept, dropped = dedup(tmp_path, [shard0, shard1])
    assert sorted(kept) == ["a-original", "far", "other"]
    assert dropped == {"dropped_near_duplicate": 2, "dropped_exact_duplicate": 1}
    rows = (tmp_path / "duplicates.jsonl").read_text()
    assert '"id": "near", "reason": "near_duplicate", "kept": "a-original"' in rows


def test_short_documents_are_not_collapsed_into_one_cluster(tmp_path):
    docs = [record(f"s{i}", f"fix {i} value") for i in range(5)] + [record("dup", "fix 0 value", date="2020-01-01")]
    kept, dropped = dedup(tmp_path, [docs])
    assert sorted(kept) == ["s0", "s1", "s2", "s3", "s4"] and dropped == {"dropped_near_duplicate": 1}


def test_field_and_switches_are_configurable(tmp_path):
    same_diff = [record("x", code(5), new="alpha beta"), record("y", code(5), new="gamma delta")]
    kept, _ = dedup(tmp_path / "a", [same_diff], DedupConfig(minhash=MinHashConfig(field="new_contents")))
    assert sorted(kept) == ["x", "y"]
    kept, _ = dedup(tmp_path / "b", [same_diff], DedupConfig(near=False))
    assert sorted(kept) == ["x", "y"]
    kept, _ = dedup(tmp_path / "c", [same_diff])
    assert kept == ["x"]


def test_cluster_step_refuses_several_tasks(tmp_path):
    with pytest.raises(ThemisInputError, match="single task"):
        list(DedupClusters(str(tmp_path), DedupConfig()).run(None, 0, 2))


def test_minhash_config_is_validated_in_one_error():
    with pytest.raises(ThemisInputError) as info:
        MinHashConfig(threshold=1.5, field="message", shingle_size=0)
    assert "threshold" in str(info.value) and "field" in str(info.value) and "shingle_size" in str(info.value)


def test_paper_defaults():
    config = MinHashConfig()
    assert (config.shingle_size, config.threshold, config.num_perm) == (20, 0.75, 256)
