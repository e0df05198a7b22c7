"""Chat completions from any OpenAI-compatible endpoint, with a concurrency limit, retries and an on-disk cache.

The cache is keyed by the whole request (model, messages, sampling parameters, seed), so an interrupted run asks
the endpoint only for what it has not answered yet, and a changed template or setting asks again. Entries are
written atomically (temporary file + rename), so concurrent tasks can share one cache directory. Only successful
answers are cached; a request that still fails after its retries, or whose answer cannot be read (a malformed
body, no choices), is returned with its error and listed in :attr:`ClientStats.failures`: it never stops the others.

    client = LLMClient(EndpointConfig(model="Qwen/Qwen3-8B", base_url="http://127.0.0.1:8000/v1"), cache_dir)
    [answer] = client.complete_all([ChatRequest(messages=[{"role": "user", "content": "..."}])])
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from themis_rm.config import check_section, setting
from themis_rm.errors import ThemisError, ThemisInputError
from themis_rm.llm_client import ChatCall, ChatClient, Endpoint, Sampling, endpoint_problems

logger = logging.getLogger(__name__)


@dataclass
class EndpointConfig:
    """Where the model is served and how it is sampled."""

    model: str = setting("", "Model name the endpoint serves (vLLM's --served-model-name).")
    base_url: str = setting("http://127.0.0.1:8000/v1", "OpenAI-compatible API root, ending in /v1.")
    api_key_env: str = setting(
        "OPENAI_API_KEY", "Environment variable holding the key; unset sends EMPTY (what local vLLM accepts)."
    )
    concurrency: int = setting(16, "Requests in flight at once (per task).")
    retries: int = setting(4, "Retries after a connection error, a timeout, 429 or 5xx; other errors fail at once.")
    backoff_s: float = setting(1.0, "Wait before retry k is backoff_s * 2**k.")
    timeout_s: float = setting(600.0, "Seconds one request may take.")
    temperature: float = setting(0.8, "Sampling temperature.")
    top_p: float = setting(0.95, "Nucleus sampling: smallest token set with this much probability.")
    max_tokens: int = setting(2560, "Longest answer, in tokens.")
    seed: int = setting(
        77, "Base seed sent with each request (vLLM honours per-request seeds); votes add their index to it."
    )

    def __post_init__(self) -> None:
        check_section(self, "llm.endpoint")

    def problems(self) -> list[str]:
        """The limits the shared chat client checks for every endpoint (the scoring judge's too)."""
        return [
            f"llm.endpoint: {p}"
            for p in endpoint_problems(self.concurrency, self.retries, self.backoff_s, self.timeout_s)
        ]

    def endpoint(self) -> Endpoint:
        """The shared client's view of this endpoint."""
        return Endpoint(
            self.model, self.base_url, self.api_key_env, self.timeout_s, self.retries, self.backoff_s, self.concurrency
        )

    def sampling(self, seed_offset: int = 0) -> Sampling:
        """The sampling options of one request; ``seed_offset`` separates repeated samples (judge votes)."""
        return Sampling(self.temperature, self.max_tokens, self.seed + seed_offset, self.top_p)


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to ask for; ``seed_offset`` distinguishes repeated samples (judge votes)."""

    messages: tuple[tuple[str, str], ...]
    seed_offset: int = 0

    @classmethod
    def user(cls, content: str, system: str | None = None, seed_offset: int = 0) -> ChatRequest:
        turns = ((("system", system),) if system else ()) + (("user", content),)
        return cls(turns, seed_offset)


@dataclass
class Completion:
    """The answer text, or the error that stopped it; ``cached`` when read from the cache."""

    text: str | None
    error: str | None = None
    cached: bool = False
    retries: int = 0


@dataclass(frozen=True)
class RequestFailure:
    """A request that got no answer: its cache key (the file a later success is stored under) and the last error."""

    key: str
    error: str


@dataclass
class ClientStats:
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    request_failures: int = 0
    failures: list[RequestFailure] = field(default_factory=list)


class LLMRequestsFailed(ThemisError):
    """Some requests of a task got no answer; what succeeded is written and cached, a rerun asks only the rest."""


class LLMClient:
    """Answers batches of :class:`ChatRequest` through the endpoint, cache first.

    Raises:
        MissingExtraError: ``openai`` is not installed (``themis-rm[data]``).
        ThemisInputError: the endpoint names no model.
    """

    def __init__(self, config: EndpointConfig, cache_dir: str | Path | None = None) -> None:
        self._chat = ChatClient(config.endpoint(), extra="data")
        if not config.model:
            raise ThemisInputError("llm.endpoint.model is empty; name the model the endpoint serves")
        self.config = config
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.stats = ClientStats()

    def cache_key(self, request: ChatRequest) -> str:
        """sha256 of everything that changes the answer."""
        c = self.config
        payload = {
            "model": c.model,
            "messages": request.messages,
            "temperature": c.temperature,
            "top_p": c.top_p,
            "max_tokens": c.max_tokens,
            "seed": c.seed + request.seed_offset,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def complete_all(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answers in request order (runs its own event loop; from async code await :meth:`acomplete_all`)."""
        return asyncio.run(self.acomplete_all(requests))

    async def acomplete_all(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Cached answers as they are; the rest asked at once, failures kept per request (see module docstring)."""
        results: list[Completion | None] = [self._cached(r) for r in requests]
        missing = [i for i, done in enumerate(results) if done is None]
        self.stats.requests += len(requests)
        self.stats.cache_hits += len(requests) - len(missing)
        answers = await self._chat.acomplete_all([self._call(requests[i]) for i in missing])
        for i, answer in zip(missing, answers, strict=True):
            results[i] = Completion(answer.text, answer.error_text, retries=answer.retries)
            self.stats.retries += answer.retries
            if answer.error is None:
                self._store(requests[i], answer.text or "")
            else:
                self.stats.request_failures += 1
                self.stats.failures.append(RequestFailure(self.cache_key(requests[i]), str(answer.error)))
        return results  # type: ignore[return-value]

    def _call(self, request: ChatRequest) -> ChatCall:
        messages = tuple({"role": role, "content": content} for role, content in request.messages)
        return ChatCall(messages, self.config.sampling(request.seed_offset))

    # ---------------------------------------------------------------------------------------------- cache
    def _path(self, request: ChatRequest) -> Path | None:
        if self.cache_dir is None:
            return None
        key = self.cache_key(request)
        return self.cache_dir / key[:2] / f"{key}.json"

    def _cached(self, request: ChatRequest) -> Completion | None:
        path = self._path(request)
        if path is None or not path.is_file():
            return None
        try:
            return Completion(json.loads(path.read_text(encoding="utf-8"))["text"], cached=True)
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            logger.warning("ignoring unreadable cache entry %s (%s)", path, exc)
            return None

    def _store(self, request: ChatRequest, text: str) -> None:
        path = self._path(request)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"request": asdict(request), "model": self.config.model, "text": text}
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump(entry, tmp, ensure_ascii=False)
        os.replace(tmp.name, path)
