"""Composite rewards inside RL loops: TRL, verl and OpenRLHF hand over flat batches; this regroups them.

Each framework gives one list of samples; samples in a row with the same prompt and tests are one group (TRL and
verl lay a prompt's ``n`` generations out consecutively), scored with the group's own tests and normalised within
it. The tests travel with each sample under :data:`GROUP_FIELDS` (``tests`` + ``entry_point``, or ``io_cases`` /
``input_output``; ``language``, ``test_preamble``, ``reference``) — TRL passes dataset columns as keywords, verl
in ``extra_info`` (and APPS-style ``ground_truth``), OpenRLHF in ``labels``. Rows are checked by the same rules
as ``themis reward``'s input.

Two backends: :class:`LocalComposite` (a spec scored in this process: ``reward_spec=spec.yaml``) and
:class:`RemoteComposite` (``POST /v1/group_rewards`` of a ``themis serve --reward-spec``: ``composite=true``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, Protocol

from themis_rm.integrations.backends import HttpBackend
from themis_rm.integrations.config import RewardClientConfig
from themis_rm.pairs import Prompt

GROUP_FIELDS = (
    "id", "language", "entry_point", "tests", "test", "test_preamble", "io_cases", "input_output", "reference"
)  # fmt: skip


class CompositeBackend(Protocol):
    def score_groups(self, rows: Sequence[dict]) -> list[dict]:
        """One output record (``themis reward``'s) per group row."""


class LocalComposite:
    """A :class:`~themis_rm.reward.CompositeReward` in this process."""

    def __init__(self, composite) -> None:
        self.composite = composite

    @classmethod
    def from_spec(cls, spec: str, model: str | None = None, scorer=None) -> LocalComposite:
        from themis_rm.reward import CompositeReward, load_reward_spec

        return cls(CompositeReward(load_reward_spec(spec, model=model), scorer=scorer))

    def score_groups(self, rows: Sequence[dict]) -> list[dict]:
        from themis_rm.pairs import RowValidator
        from themis_rm.reward.groups import parse_group

        groups = [parse_group(RowValidator("rollout batch", i, row)) for i, row in enumerate(rows)]
        return [result.to_record() for result in self.composite.score(groups)]


class RemoteComposite:
    """``POST /v1/group_rewards`` per group, with :class:`HttpBackend`'s retries."""

    def __init__(self, http: HttpBackend) -> None:
        self.http = http

    def score_groups(self, rows: Sequence[dict]) -> list[dict]:
        return [self.http.post("/v1/group_rewards", _jsonable(row)) for row in rows]


def composite_from(config: RewardClientConfig) -> CompositeBackend:
    """The composite backend ``config`` names (one per distinct config per process)."""
    return _cached(config)


@functools.cache
def _cached(config: RewardClientConfig) -> CompositeBackend:
    if config.url is not None:
        http = HttpBackend(
            config.url, api_key=config.api_key, timeout_s=config.timeout_s, max_retries=config.max_retries
        )
        return RemoteComposite(http)
    return LocalComposite.from_spec(config.reward_spec, model=config.model)


def composite_rewards(
    backend: CompositeBackend, prompts: Sequence[Prompt], responses: Sequence[str], fields: Sequence[dict]
) -> tuple[list[float], dict[str, list[float | None]]]:
    """Flat rewards and flat normalised components for a batch, scored group by group."""
    groups = group_samples(prompts, responses, fields)
    records = backend.score_groups([row for row, _ in groups])
    rewards: list[float] = [0.0] * len(responses)
    components: dict[str, list[float | None]] = {}
    for (_, indices), record in zip(groups, records, strict=True):
        for position, index in enumerate(indices):
            rewards[index] = float(record["rewards"][position])
            for label, values in record["components"].items():
                components.setdefault(label, [None] * len(responses))[index] = values[position]
    return rewards, components


def group_samples(
    prompts: Sequence[Prompt], responses: Sequence[str], fields: Sequence[dict]
) -> list[tuple[dict, list[int]]]:
    """Consecutive samples with the same prompt and test fields as one group row, with their batch indices."""
    groups: list[tuple[dict, list[int]]] = []
    last_key = None
    for index, (prompt, response, extra) in enumerate(zip(prompts, responses, fields, strict=True)):
        kept = {key: value for key, value in extra.items() if key in GROUP_FIELDS and value is not None}
        key = json.dumps([prompt, _jsonable(kept)], sort_keys=True, default=str)
        if key != last_key:
            groups.append(({"id": f"sample-{index}", **_jsonable(kept), "prompt": prompt, "completions": []}, []))
            last_key = key
        groups[-1][0]["completions"].append(response)
        groups[-1][1].append(index)
    return groups


def _jsonable(value: Any) -> Any:
    """Columns as plain JSON values (parquet and datasets give numpy arrays and scalars)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return value
