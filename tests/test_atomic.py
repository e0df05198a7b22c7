"""Outputs are whole or absent: a writer that fails leaves the previous file and no temporary behind."""

from __future__ import annotations

import pytest

from themis_rm.atomic import atomic_path, refuse_overwrite, write_text_atomic
from themis_rm.errors import ThemisInputError


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_text_atomic(tmp_path / "results.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_refuse_overwrite_matches_the_same_file_under_another_name(tmp_path):
    data = write_text_atomic(tmp_path / "data.jsonl", "{}\n")
    (tmp_path / "alias.jsonl").symlink_to(data)
    with pytest.raises(ThemisInputError, match=r"-o .*alias\.jsonl is the --input file"):
        refuse_overwrite({"-o": tmp_path / "alias.jsonl"}, {"--input": data})
    refuse_overwrite({"-o": tmp_path / "new.jsonl", "--other": None}, {"--input": data, "--hub": "org/dataset"})
