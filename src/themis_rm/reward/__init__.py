"""Composite code rewards: a reward model's criteria, sandboxed tests, static analysis and measured cost as one
reward, with every component and its evidence kept.

* :class:`CompositeReward` — score groups (:class:`RewardGroup`) under a :class:`RewardSpec`;
* :func:`load_reward_spec` — the spec from YAML/TOML/JSON, every bad field reported at once;
* ``themis reward`` (:mod:`.job`) — the same over a file, resumable.
"""

from themis_rm.reward.composite import CandidateReward, CompositeReward, GroupReward
from themis_rm.reward.groups import RewardGroup, load_groups
from themis_rm.reward.spec import RewardSpec, load_reward_spec

__all__ = [
    "CandidateReward",
    "CompositeReward",
    "GroupReward",
    "RewardGroup",
    "RewardSpec",
    "load_groups",
    "load_reward_spec",
]
