"""One pair schema: what ``themis data`` writes, ``themis bench`` and ``themis train`` read without renaming."""

from __future__ import annotations

import pytest

pytest.importorskip("datatrove")

from themis_rm.data.assemble import AssembleConfig, PairBuilder, pair_writer
from themis_rm.data.base import Document
from themis_rm.packs import load_prompt_pack
from themis_rm.pairs import load_pairs
from themis_rm.train.data import load_training_pairs

FC, RE = "Functional_Correctness", "Runtime_Efficiency"


def _records() -> list[Document]:
    """Two mined records as the assemble stage receives them (one with a synthesised instruction and a bug)."""
    base = {"old_contents": "x = 1\n", "message": "Fix x", "language": "Python", "path": "x.py", "repo": "acme/kv"}
    first = {**base, "aspects": [FC, RE], "instruction": "Set x to two.", "buggy_code": "x = 3\n"}
    second = {**base, "aspects": [RE], "path": "y.py", "old_contents": "y = [i for i in range(9)]\n"}
    return [Document("x = 2\n", "r1", metadata=first), Document("y = list(range(9))\n", "r2", metadata=second)]


def _write_data_output(folder) -> list:
    """Run the assemble step and the real output writer; return the files written."""
    pairs = PairBuilder(AssembleConfig(prompt_pack="open", validation_fraction=0.0)).run(iter(_records()))
    with pair_writer(str(folder)) as writer:
        for document in pairs:
            writer.write(document, rank=0)
    return sorted(folder.rglob("*.jsonl"))


def test_data_output_is_read_by_bench_and_train_without_renaming(tmp_path):
    (path,) = _write_data_output(tmp_path / "pairs")
    assert path.relative_to(tmp_path / "pairs").parts[0] == "train"

    bench = load_pairs(path).rows
    assert [p.id for p in bench] == [
        "r1:Functional_Correctness",
        "r1:Runtime_Efficiency",
        "r1:bug",
        "r2:Runtime_Efficiency",
    ]
    assert [p.prompt for p in bench[:3]] == ["Set x to two."] * 3
    assert bench[3].prompt == "Fix x\n\nWrite the complete Python file `y.py`."
    assert [(p.chosen, p.rejected, p.aspect, p.language) for p in bench[:3:2]] == [
        ("x = 2\n", "x = 1\n", FC, "Python"),
        ("x = 2\n", "x = 3\n", FC, "Python"),
    ]

    pack = load_prompt_pack("open")
    train = load_training_pairs(path, pack=lambda: pack).rows
    assert [(t.id, t.prompt, t.chosen, t.rejected, t.aspect, t.language) for t in train] == [
        (p.id, p.prompt, p.chosen, p.rejected, p.aspect, p.language) for p in bench
    ]
    assert all(isinstance(t.system, str) for t in train), "data always writes system: the trainer keeps it"
