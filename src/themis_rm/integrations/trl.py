"""Themis rewards as TRL reward functions: ``GRPOTrainer(reward_funcs=ThemisReward(...))``.

TRL calls a reward function with the batch's ``prompts`` and ``completions`` (plus ``completion_ids``, the dataset's
other columns and ``trainer_state`` as keywords) and wants one float per completion. Both of TRL's dataset forms
work:

* conversational: ``prompts[i]`` is a list of turns, ``completions[i]`` the generated turns (``[{"role":
  "assistant", "content": ...}]``); content may be a string or TRL's list of text parts. Any turns the completion
  has before its last one (tool calls and results) join the prompt; the last turn's text is the response.
* standard: ``prompts[i]`` and ``completions[i]`` are strings; the prompt is scored as the user turn.

One criteria spec per function; for several criteria, :meth:`ThemisReward.per_criterion` gives one function per
criterion, which TRL logs separately (``rewards/themis_security/mean``) and mixes with ``GRPOConfig.reward_weights``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from themis_rm.conversation import plain_turns, text_content
from themis_rm.integrations.backends import LocalBackend, RewardBackend, backend_from
from themis_rm.integrations.config import client_config
from themis_rm.pairs import Message, Prompt


class ThemisReward:
    """A TRL reward function scoring completions under one criteria spec.

    Args:
        backend: where rewards come from: a :class:`LocalBackend` (``ThemisReward.local(scorer)``) or an
            :class:`HttpBackend` (``ThemisReward.remote(url)``).
        criteria: the criteria spec (``full``, ``security``, ``security,runtime``, ``none``).
        name: the name TRL logs the reward under (default ``themis_<criteria>``).
    """

    def __init__(self, backend: RewardBackend, criteria: str = "full", name: str | None = None) -> None:
        self.backend = backend
        self.criteria = criteria
        self.__name__ = name or "themis_" + criteria.replace(",", "+").replace(" ", "")

    @classmethod
    def local(cls, scorer, criteria: str = "full", name: str | None = None) -> ThemisReward:
        """Score in the training process with a loaded :class:`~themis_rm.scoring.Scorer`."""
        return cls(LocalBackend(scorer), criteria, name)

    @classmethod
    def remote(cls, url: str | None = None, criteria: str | None = None, **client: Any) -> ThemisReward:
        """Score on a ``themis serve`` at ``url`` (or ``$THEMIS_REWARD_URL``); ``client``: the other
        :class:`~themis_rm.integrations.config.RewardClientConfig` fields (``api_key``, ``batch_size``, ...)."""
        config = client_config(url=url, criteria=criteria, **client)
        return cls(backend_from(config), config.criteria)

    @classmethod
    def per_criterion(cls, backend: RewardBackend, criteria: Sequence[str]) -> list[ThemisReward]:
        """One reward function per criteria spec, for ``reward_funcs=[...]`` with ``reward_weights``."""
        return [cls(backend, spec) for spec in criteria]

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        conversations, responses = trl_inputs(prompts, completions)
        return self.backend.score(conversations, responses, [self.criteria])[:, 0].tolist()

    def __repr__(self) -> str:
        return f"ThemisReward({self.__name__}, backend={type(self.backend).__name__})"


class ThemisCompositeReward:
    """A TRL reward function returning the composite reward (rm + tests + analysers) of a spec.

    The tests come from the dataset's columns, which TRL passes as keywords (``tests`` + ``entry_point``, or
    ``io_cases``/``input_output``; see :mod:`themis_rm.integrations.composite`); each prompt's generations are
    one group. :meth:`components` gives one reward function per component instead, for ``reward_funcs=[...]``
    with ``reward_weights`` (TRL then logs each; the batch is scored once and shared).
    """

    __name__ = "themis_composite"

    def __init__(self, backend) -> None:
        self.backend = backend
        self._last: tuple[tuple, tuple[list[float], dict]] | None = None

    @classmethod
    def local(cls, spec: str, *, model: str | None = None, scorer=None) -> ThemisCompositeReward:
        """Score in the training process: ``spec`` is a reward spec file (``model`` fills its rm.model)."""
        from themis_rm.integrations.composite import LocalComposite

        return cls(LocalComposite.from_spec(spec, model=model, scorer=scorer))

    @classmethod
    def remote(cls, url: str | None = None, **client: Any) -> ThemisCompositeReward:
        """Score on a ``themis serve --reward-spec`` at ``url`` (``POST /v1/group_rewards``)."""
        from themis_rm.integrations.composite import composite_from

        return cls(composite_from(client_config(url=url, composite=True, **client)))

    def scored(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> tuple[list[float], dict]:
        """(rewards, {component: normalised values}) of a batch; the last batch is remembered, so the
        per-component functions of one step score it once."""
        from themis_rm.integrations.composite import GROUP_FIELDS, composite_rewards

        conversations, responses = trl_inputs(prompts, completions)
        columns = {key: kwargs[key] for key in GROUP_FIELDS if key in kwargs}
        fields = [{key: values[i] for key, values in columns.items()} for i in range(len(responses))]
        key = (repr(conversations), tuple(responses), repr(fields))
        if self._last is None or self._last[0] != key:
            self._last = (key, composite_rewards(self.backend, conversations, responses, fields))
        return self._last[1]

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return self.scored(prompts, completions, **kwargs)[0]

    def components(self, labels: Sequence[str]) -> list[ComponentReward]:
        """One TRL reward function per component label (``rm:functional``, ``tests``, ``static:ruff``)."""
        return [ComponentReward(self, label) for label in labels]


class ComponentReward:
    """One component of a :class:`ThemisCompositeReward`, as its own TRL reward function (None where the
    component does not apply: TRL skips those in its weighted sum)."""

    def __init__(self, composite: ThemisCompositeReward, label: str) -> None:
        self.composite, self.label = composite, label
        self.__name__ = "themis_" + label.replace(":", "_").replace(",", "+")

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        _, components = self.composite.scored(prompts, completions, **kwargs)
        if self.label not in components:
            raise KeyError(f"the spec has no component {self.label!r}; it has {', '.join(components)}")
        return components[self.label]


def trl_inputs(prompts: Sequence[Any], completions: Sequence[Any]) -> tuple[list[Prompt], list[str]]:
    """TRL's (prompts, completions) as (prompt turns or text, response text); see the module docstring."""
    conversations: list[Prompt] = []
    responses = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        if isinstance(prompt, str):
            conversations.append(prompt)
            responses.append(text_content(completion))
            continue
        try:
            turns: list[Message] = plain_turns(prompt)
            generated = plain_turns(completion) if isinstance(completion, list) else []
        except ValueError as exc:
            raise ValueError(f"completion {i}: {exc}") from None
        if not generated or generated[-1]["role"] != "assistant":
            raise ValueError(f"completion {i} must end with an assistant turn, got {completion!r:.200}")
        conversations.append(turns + generated[:-1])
        responses.append(generated[-1]["content"])
    return conversations, responses
