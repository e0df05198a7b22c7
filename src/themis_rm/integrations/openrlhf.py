"""Themis rewards as an OpenRLHF reward function file: ``--reward.remote_url /path/to/this/openrlhf.py``.

OpenRLHF loads a ``.py`` given as the reward URL and calls ``reward_func(queries, prompts, labels)`` per rollout.
``queries`` are the policy's rendered strings (prompt + response, special tokens kept) and ``prompts`` the
rendered prompts, exactly what it posts to ``/get_reward``. They are split into turns and response the way
``themis serve --rerender`` splits them (:mod:`themis_rm.serve.queries`) and scored in-process
(``THEMIS_REWARD_MODEL``) or on a server (``THEMIS_REWARD_URL``) under ``THEMIS_REWARD_CRITERIA`` (default
``full``). The answer has ``/get_reward``'s layout: ``rewards`` (raw) and ``scores`` (their sigmoid, which
OpenRLHF's dynamic filtering reads). A plain server needs no file: ``--reward.remote_url http://host:8000/get_reward``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from scipy.special import expit

from themis_rm.integrations.backends import backend_from
from themis_rm.integrations.composite import composite_from, composite_rewards
from themis_rm.integrations.config import client_config
from themis_rm.serve.queries import QuerySplitter


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any] | None = None) -> dict:
    """OpenRLHF's reward-function interface. ``labels`` (the dataset's label column) carry each sample's tests
    when the reward is composite (``THEMIS_REWARD_REWARD_SPEC``, or ``THEMIS_REWARD_COMPOSITE`` with a url): a
    JSON object with the group fields (``tests`` + ``entry_point``, ``io_cases``, ...); otherwise unused."""
    config = client_config()
    splitter = QuerySplitter(config.assistant_marker, config.end_markers)
    splits = [splitter.split(query, prompts[i], f"queries[{i}]") for i, query in enumerate(queries)]
    turns, responses = [s.turns for s in splits], [s.response for s in splits]
    if config.wants_composite:
        fields = [_label_fields(label) for label in (labels if labels is not None else [None] * len(queries))]
        rewards, components = composite_rewards(composite_from(config), turns, responses, fields)
        logs = {label: _mean(values) for label, values in components.items()}
        return {"rewards": rewards, "scores": expit(rewards).tolist(), "extra_logs": logs}
    scored = backend_from(config).score(turns, responses, [config.criteria])
    return {"rewards": scored[:, 0].tolist(), "scores": expit(scored[:, 0]).tolist(), "extra_logs": {}}


def _label_fields(label: Any) -> dict:
    if isinstance(label, str):
        try:
            label = json.loads(label)
        except ValueError:
            return {}
    return dict(label) if isinstance(label, dict) else {}


def _mean(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else 0.0
