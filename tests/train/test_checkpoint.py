"""Checkpoint bookkeeping: complete checkpoints only, newest for --resume auto, data position round-trips."""

from __future__ import annotations

from collections import Counter

import pytest

from themis_rm.errors import ThemisInputError
from themis_rm.train.checkpoint import TrainState, find_resume_point, list_checkpoints
from themis_rm.train.config import TrainConfig


def test_unfinished_checkpoints_are_invisible_to_resume(tmp_path):
    for name in ("step-4", "step-12", ".tmp-step-16", "step-8", "notes"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-4", "step-8", "step-12"]
    assert find_resume_point(tmp_path, "auto").name == "step-12"
    assert find_resume_point(tmp_path / "fresh", "auto") is None  # nothing yet: start from scratch
    assert find_resume_point(tmp_path, None) is None
    assert find_resume_point(tmp_path, str(tmp_path / "checkpoints" / "step-4")).name == "step-4"
    with pytest.raises(ThemisInputError, match="--resume"):
        find_resume_point(tmp_path, str(tmp_path / "missing"))


def test_resume_path_is_validated_with_the_config(tmp_path):
    config = TrainConfig(model="m", data="d", output=tmp_path, resume=str(tmp_path / "nope"))
    with pytest.raises(ThemisInputError, match="--resume must be 'auto' or an existing checkpoint directory"):
        config.validate()


def test_train_state_round_trips_position_and_totals_but_not_pending_counts():
    state = TrainState(global_step=7, epoch=1, step_in_epoch=3, counters=Counter(truncated_pairs=2))
    state.pending["dropped_too_long"] = 5
    restored = TrainState()
    restored.load_state_dict(state.state_dict())
    assert (restored.global_step, restored.epoch, restored.step_in_epoch) == (7, 1, 3)
    assert restored.counters == Counter(truncated_pairs=2) and not restored.pending
