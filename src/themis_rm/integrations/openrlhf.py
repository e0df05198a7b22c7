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

from collections.abc import Sequence
from typing import Any

from scipy.special import expit

from themis_rm.integrations.backends import backend_from
from themis_rm.integrations.config import client_config
from themis_rm.serve.queries import QuerySplitter


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any] | None = None) -> dict:
    """OpenRLHF's reward-function interface; ``labels`` (the dataset's label column) are not used."""
    config = client_config()
    splitter = QuerySplitter(config.assistant_marker, config.end_markers)
    splits = [splitter.split(query, prompts[i], f"queries[{i}]") for i, query in enumerate(queries)]
    rewards = backend_from(config).score([s.turns for s in splits], [s.response for s in splits], [config.criteria])
    return {"rewards": rewards[:, 0].tolist(), "scores": expit(rewards[:, 0]).tolist(), "extra_logs": {}}
