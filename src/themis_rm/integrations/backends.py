"""Where an RL integration's rewards come from: a reward model in this process, or a ``themis serve`` over HTTP.

Both take the same input (prompts as text or conversations, responses as text, criteria specs) and give the same
raw rewards, because both follow one rule for conversations (:mod:`themis_rm.conversation`): the server applies
it to what :class:`HttpBackend` sends, :class:`LocalBackend` applies it here.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from themis_rm.conversation import criterion_requests
from themis_rm.errors import MissingExtraError, ThemisError
from themis_rm.integrations.config import RewardClientConfig
from themis_rm.pairs import Prompt

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class RewardBackend(Protocol):
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], criteria: Sequence[str]) -> np.ndarray:
        """``rewards[i, j]``: raw reward of ``responses[i]`` after ``prompts[i]`` under ``criteria[j]``."""
        ...


class RewardServerError(ThemisError):
    """The reward server refused a request (4xx), or stayed busy or unreachable through every retry."""


class LocalBackend:
    """A loaded :class:`~themis_rm.scoring.Scorer`: no server, the model in the training process."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], criteria: Sequence[str]) -> np.ndarray:
        requests = []
        for spec in criteria:  # one scoring call for every criterion, so the engine batches across them
            requests += criterion_requests(prompts, responses, self.scorer.system_prompt(spec))[0]
        rewards = self.scorer.score_requests(requests).rewards
        return np.asarray(rewards, dtype=np.float64).reshape(len(criteria), len(prompts)).T


class HttpBackend:
    """``POST /v1/rewards`` on a ``themis serve``, in chunks of ``batch_size`` items, retrying a busy server.

    503/429 (and gateway errors) are retried after the server's ``Retry-After`` (else exponential backoff, at
    most 30 s), as are refused connections; any other 4xx fails at once with the server's reason and request id,
    because a malformed request will not get better and training on a silent ``None`` is worse than stopping.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        max_retries: int = 8,
        batch_size: int = 64,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise MissingExtraError("httpx", "client") from exc
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self.max_retries = max_retries
        self.batch_size = batch_size

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], criteria: Sequence[str]) -> np.ndarray:
        items = [_item(prompt, response) for prompt, response in zip(prompts, responses, strict=True)]
        rows = []
        for start in range(0, len(items), self.batch_size):
            answer = self.post("/v1/rewards", {"items": items[start : start + self.batch_size], "criteria": criteria})
            labels = answer["criteria"]
            rows += [[result["scores"][label] for label in labels] for result in answer["results"]]
        return np.asarray(rows, dtype=np.float64).reshape(len(items), len(criteria))

    def post(self, path: str, body: dict) -> dict:
        """POST ``body`` to ``path``, retrying a busy or unreachable server; the answer's JSON."""
        import httpx

        for attempt in range(self.max_retries + 1):
            wait = min(2.0**attempt, 30.0)
            try:
                answer = self.client.post(path, json=body)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if answer.status_code == 200:
                    return answer.json()
                problem = _reason(answer)
                if answer.status_code not in RETRY_STATUSES:
                    raise RewardServerError(f"{self.url}{path} refused the request: {problem}")
                wait = _retry_after(answer, wait)
            if attempt < self.max_retries:
                logger.warning("%s%s: %s; retry %d in %.1f s", self.url, path, problem, attempt + 1, wait)
                time.sleep(wait)
        raise RewardServerError(f"{self.url}{path} failed {self.max_retries + 1} times; last: {problem}")

    def close(self) -> None:
        self.client.close()


def _item(prompt: Prompt, response: str) -> dict:
    if isinstance(prompt, str):
        return {"prompt": prompt, "response": response}
    return {"messages": list(prompt), "response": response}


def _reason(answer) -> str:
    """``HTTP 422 (request 1f3a...): items[0].response: ...``: the status, the server's message and request id."""
    try:
        message = answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = answer.text[:500]
    return f"HTTP {answer.status_code} (request {answer.headers.get('x-request-id', '?')}): {message}"


def _retry_after(answer, default: float) -> float:
    try:
        return min(max(float(answer.headers.get("retry-after", default)), 0.0), 60.0)
    except ValueError:
        return default


def backend_from(config: RewardClientConfig) -> RewardBackend:
    """The backend ``config`` names; one per distinct config per process (reward functions are called per step,
    and verl/OpenRLHF workers load a reward function once, so the model or connection pool is built once)."""
    return _cached_backend(config)


@functools.cache
def _cached_backend(config: RewardClientConfig) -> RewardBackend:
    if config.url is not None:
        return HttpBackend(
            config.url,
            api_key=config.api_key,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            batch_size=config.batch_size,
        )
    from themis_rm.scoring import Scorer

    return LocalBackend(Scorer.from_pretrained(config.model, max_length=config.max_length, prompts=config.prompt_pack))
