"""Themis rewards as a verl custom reward function (``reward.custom_reward_function``).

verl's reward managers call ``compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)``
once per sample (verl 0.7.1-0.9.1: the ``naive`` manager of the reward loop) and pass the response text only. The
prompt therefore travels in ``extra_info``: put it there when preparing the parquet (``extra_info["prompt"]``, text
or the chat turns; the key is ``prompt_key``). Configuration comes from ``reward_kwargs`` or ``THEMIS_REWARD_*``::

    reward.custom_reward_function.path=$(python -c 'import themis_rm.integrations.verl as m; print(m.__file__)')
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.url=http://rm-host:8000
    +reward.custom_reward_function.reward_kwargs.criteria=security

With ``reward_kwargs.reward_spec`` (a spec scored in the worker) or ``url`` + ``composite=true`` (a server's
``--reward-spec``), the reward is the composite of rm, tests and analysers; each sample's tests come from
``extra_info`` (``tests`` + ``entry_point``, ``io_cases``, ...) or an APPS-style ``ground_truth`` (``{"inputs": [...],
"outputs": [...]}``), and ``compute_score_batch`` groups a prompt's consecutive samples.

``compute_score_batch`` is the batched form (``data_sources, solution_strs, ground_truths, extra_infos``) that
verl's ``batch`` reward manager called before 0.7.1. verl's own reward-model path (``reward.reward_model``, the
``/classify`` endpoint) needs nothing from here: point it at ``themis serve`` (docs/serve.md).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from themis_rm.conversation import plain_turns
from themis_rm.integrations.backends import backend_from
from themis_rm.integrations.composite import GROUP_FIELDS, composite_from, composite_rewards
from themis_rm.integrations.config import RewardClientConfig, client_config
from themis_rm.pairs import Prompt

_FIELDS = frozenset(field.name for field in dataclasses.fields(RewardClientConfig))


def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: dict | None = None, **kwargs: Any
) -> float:
    """The reward of one verl sample (``solution_str`` answering ``extra_info[prompt_key]``)."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[dict | None],
    **kwargs: Any,
) -> list[float]:
    """Rewards of a batch of verl samples, in one scoring call. Keywords that are not
    :class:`RewardClientConfig` fields (verl adds ``reward_router_address``, ``reward_model_tokenizer``) are
    ignored."""
    config = client_config(**{key: value for key, value in kwargs.items() if key in _FIELDS})
    prompts = [_prompt(info, config.prompt_key, i) for i, info in enumerate(extra_infos)]
    if config.wants_composite:
        fields = [_group_fields(info, truth) for info, truth in zip(extra_infos, ground_truths, strict=True)]
        return composite_rewards(composite_from(config), prompts, list(solution_strs), fields)[0]
    return backend_from(config).score(prompts, list(solution_strs), [config.criteria])[:, 0].tolist()


def _group_fields(extra_info: dict | None, ground_truth: Any) -> dict:
    """A sample's tests: ``extra_info``'s group fields, else an APPS-style ``ground_truth`` (``{"inputs": [...],
    "outputs": [...]}``, or its JSON) as input/output cases."""
    fields = {key: value for key, value in (extra_info or {}).items() if key in GROUP_FIELDS}
    truth = ground_truth
    if isinstance(truth, str) and truth.lstrip().startswith("{"):
        try:
            truth = json.loads(truth)
        except ValueError:
            truth = None
    if isinstance(truth, dict) and "inputs" in truth and "outputs" in truth and not fields.keys() & _TEST_KEYS:
        fields["input_output"] = {"inputs": list(truth["inputs"]), "outputs": list(truth["outputs"])}
    return fields


_TEST_KEYS = {"tests", "test", "io_cases", "input_output"}


def _prompt(extra_info: dict | None, key: str, index: int) -> Prompt:
    """The sample's prompt: text, or chat turns (parquet gives them as a numpy array of dicts)."""
    value = (extra_info or {}).get(key)
    if value is None:
        raise KeyError(
            f"sample {index}: extra_info has no {key!r}; verl passes reward functions the response only, so put "
            f"the prompt in extra_info[{key!r}] when preparing the data (or set reward_kwargs.prompt_key)"
        )
    if isinstance(value, str):
        return value
    value = value.tolist() if hasattr(value, "tolist") else list(value)
    try:
        return plain_turns(value)
    except ValueError as exc:
        raise ValueError(f"sample {index}: extra_info[{key!r}]: {exc}") from None
