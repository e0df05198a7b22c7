"""``--report-to tensorboard`` writes every metric record where TensorBoard reads it."""

from __future__ import annotations

import pytest

from themis_rm.train.loop import run_training

from .synthetic import operator_pairs, write_jsonl

pytest.importorskip("tensorboard", reason="tensorboard is in the train extra")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_tensorboard_gets_one_scalar_per_logged_step(small_config, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", operator_pairs(16, seed=2))
    summary = run_training(small_config(data, report_to="jsonl,tensorboard", log_every=1))
    events = EventAccumulator(str(summary.output / "tensorboard"))
    events.Reload()
    losses = events.Scalars("loss/total")
    assert [e.step for e in losses] == list(range(1, summary.steps + 1))
    assert {"train/lr", "train/tokens_per_s"} <= set(events.Tags()["scalars"])
