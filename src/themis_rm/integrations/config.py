"""``RewardClientConfig``: where the RL integrations get rewards from, from keyword arguments or ``THEMIS_REWARD_*``.

Declared with :func:`themis_rm.config.setting` like every job's config. RL frameworks load reward functions from a
path and pass few arguments (OpenRLHF none, verl its ``reward_kwargs``), so every field can also come from the
environment of the training job: ``THEMIS_REWARD_URL=http://rm:8000``, ``THEMIS_REWARD_CRITERIA=security``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from themis_rm.config import load_config, setting
from themis_rm.serve.settings import DEFAULT_END_MARKERS, QWEN_ASSISTANT_MARKER

ENV_PREFIX = "THEMIS_REWARD_"


@dataclass(frozen=True, kw_only=True)
class RewardClientConfig:
    """Reward client settings."""

    url: str | None = setting(None, "A running `themis serve` (http://host:port); scored over HTTP.")
    model: str | None = setting(None, "A reward model (hub id or directory) to load in this process instead of a url.")
    criteria: str = setting("full", "Criteria spec of every reward (`full`, `security,runtime`, `none`).")
    api_key: str | None = setting(None, "Bearer token of the server (`themis serve --api-key`).", secret=True)
    timeout_s: float = setting(300.0, "Seconds one HTTP call may take, retries excluded.", gt=0)
    max_retries: int = setting(8, "Retries of a busy (503/429) or unreachable server before failing.", ge=0)
    batch_size: int = setting(64, "Items per HTTP call (keep under the server's --max-items-per-request).", ge=1)
    max_length: int = setting(4096, "In-process scoring: the token budget of one sequence.", ge=16)
    prompt_pack: str = setting("official", "In-process scoring: the prompt pack criteria come from.")
    prompt_key: str = setting("prompt", "verl: the extra_info key holding each sample's prompt (text or messages).")
    assistant_marker: str = setting(
        QWEN_ASSISTANT_MARKER, "OpenRLHF: the policy template's assistant header, where a query's response starts."
    )
    end_markers: tuple[str, ...] = setting(
        DEFAULT_END_MARKERS, "OpenRLHF: end-of-turn/padding strings stripped from turns (comma-separated in env)."
    )

    reward_spec: str | None = setting(
        None,
        "A composite reward spec (themis reward's) scored in this process: the reward is its composite (rm + "
        "tests + analysers); `model` fills its rm.model when it names none.",
    )
    composite: bool = setting(
        False, "With url: the reward is the composite of the server's --reward-spec (POST /v1/group_rewards)."
    )

    def problems(self) -> Iterator[str]:
        local = self.model is not None or self.reward_spec is not None
        if (self.url is None) == (not local):
            yield (
                f"give exactly one of url or model/reward_spec (keyword, or ${ENV_PREFIX}URL / ${ENV_PREFIX}MODEL / "
                f"${ENV_PREFIX}REWARD_SPEC)"
            )
        if self.url is not None and self.reward_spec is not None:
            yield (
                "reward_spec is scored in this process; a server runs its own (themis serve --reward-spec): set "
                "composite instead"
            )
        if self.composite and self.url is None:
            yield "composite reads a server's /v1/group_rewards: give url (or reward_spec to score in this process)"

    @property
    def wants_composite(self) -> bool:
        return self.composite or self.reward_spec is not None


def client_config(**overrides: Any) -> RewardClientConfig:
    """Defaults < ``THEMIS_REWARD_*`` < ``overrides`` (keyword arguments; ``None`` means not given)."""
    return load_config(RewardClientConfig, overrides=overrides, env_prefix=ENV_PREFIX)
