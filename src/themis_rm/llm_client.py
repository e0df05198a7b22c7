"""One OpenAI-compatible chat client for every job that asks a model for text: data LLM stages and judges.

Built on the ``openai`` package (vLLM, SGLang, TGI and OpenAI all speak its protocol). It owns what both callers
need and must agree on: the API key read from a named environment variable, a per-request timeout, retries with
exponential backoff on what may pass (no answer at all, 429, 5xx) and none on what will not (other 4xx), a bound
on requests in flight, and the sampling options sent with each request.

A request never raises for the batch: each result carries its text or an :class:`LLMCallError` saying why not,
:class:`LLMTransportError` (no usable HTTP answer: connection, timeout, an error status, auth included) or
:class:`LLMContentError` (a 200 whose body holds no answer: not JSON, no ``choices``). Callers decide what each
means: the data stages count both as request failures, a judge counts an empty answer as unparsable.

    client = ChatClient(Endpoint(model="Qwen/Qwen3-8B", base_url="http://127.0.0.1:8000/v1"), extra="judge")
    [result] = client.complete_all([ChatCall.user("Rate this.", Sampling(temperature=0.0, max_tokens=64))])
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from themis_rm.errors import MissingExtraError, ThemisError

logger = logging.getLogger(__name__)

Messages = tuple[dict[str, str], ...]


class LLMCallError(ThemisError):
    """A chat completion that gave no usable answer; the message starts with the underlying error's type name."""


class LLMTransportError(LLMCallError):
    """No usable HTTP answer: connection refused or reset, a timeout, or an error status (``status``)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """No response at all, 429 or a 5xx may pass on a retry; any other 4xx will not."""
        return self.status is None or self.status == 429 or self.status >= 500


class LLMAuthError(LLMTransportError):
    """The endpoint refused the key (401 or 403): never retried, the fix is the key's environment variable."""


class LLMContentError(LLMCallError):
    """The endpoint answered, but the body holds no answer (not JSON, no ``choices``); not retried."""


@dataclass(frozen=True)
class Endpoint:
    """Where the model is served and how hard to try; the job configs (judge, data) each build one."""

    model: str
    """Model name the endpoint serves (vLLM's ``--served-model-name``)."""
    base_url: str = "http://127.0.0.1:8000/v1"
    """OpenAI-compatible API root, ending in ``/v1``."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the key; unset sends ``EMPTY`` (what local vLLM accepts)."""
    timeout_s: float = 300.0
    """Per-request timeout."""
    retries: int = 3
    """Retries after a connection error, a timeout, 429 or 5xx; other errors fail at once."""
    backoff_s: float = 1.0
    """Wait before retry k is ``backoff_s * 2**k``."""
    concurrency: int = 8
    """Requests in flight at once."""


def endpoint_problems(concurrency: int, retries: int, backoff_s: float, timeout_s: float) -> list[str]:
    """What is wrong with an endpoint's limits, one message each (configs collect them and raise once)."""
    problems = []
    if concurrency < 1:
        problems.append(f"concurrency must be >= 1, got {concurrency}")
    if retries < 0 or backoff_s < 0 or timeout_s <= 0:
        problems.append(
            f"need retries >= 0, backoff_s >= 0 and timeout_s > 0; got retries={retries}, backoff_s={backoff_s}, "
            f"timeout_s={timeout_s}"
        )
    return problems


@dataclass(frozen=True)
class Sampling:
    """Sampling options sent with a request; a None option is not sent (the server's default applies)."""

    temperature: float
    max_tokens: int
    seed: int | None = None
    top_p: float | None = None

    def params(self) -> dict[str, float | int]:
        """The keyword arguments of ``chat.completions.create`` (the field names are the API's)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class ChatCall:
    """One chat completion to ask for: the messages and how to sample them."""

    messages: Messages
    sampling: Sampling

    @classmethod
    def user(cls, content: str, sampling: Sampling) -> ChatCall:
        return cls(({"role": "user", "content": content},), sampling)


@dataclass(frozen=True)
class ChatResult:
    """The answer text (``""`` for a null content), or the error that stopped it; ``retries`` made either way."""

    text: str | None
    error: LLMCallError | None = None
    retries: int = 0

    @property
    def error_text(self) -> str | None:
        return None if self.error is None else str(self.error)


class ChatClient:
    """Answers batches of :class:`ChatCall` in order, at most ``endpoint.concurrency`` in flight.

    Args:
        endpoint: where to send them.
        extra: the pip extra that installs ``openai`` for the calling job (``judge``, ``data``), named when it
            is missing.

    Raises:
        MissingExtraError: ``openai`` is not installed.
    """

    def __init__(self, endpoint: Endpoint, *, extra: str) -> None:
        try:
            import openai
        except ImportError as exc:
            raise MissingExtraError("openai", extra) from exc
        self._openai = openai
        self.endpoint = endpoint

    def complete_all(
        self, calls: Sequence[ChatCall], progress: Callable[[int], None] | None = None
    ) -> list[ChatResult]:
        """Results in call order (runs its own event loop; from async code await :meth:`acomplete_all`)."""
        return asyncio.run(self.acomplete_all(calls, progress))

    async def acomplete_all(
        self, calls: Sequence[ChatCall], progress: Callable[[int], None] | None = None
    ) -> list[ChatResult]:
        """Async :meth:`complete_all`; ``progress(1)`` is called as each call finishes."""
        if not calls:
            return []
        endpoint = self.endpoint
        api_key = os.environ.get(endpoint.api_key_env) or "EMPTY"
        client = self._openai.AsyncOpenAI(
            base_url=endpoint.base_url, api_key=api_key, timeout=endpoint.timeout_s, max_retries=0
        )
        semaphore = asyncio.Semaphore(endpoint.concurrency)
        async with client:
            return list(await asyncio.gather(*(self._complete(client, semaphore, c, progress) for c in calls)))

    async def _complete(self, client, semaphore: asyncio.Semaphore, call: ChatCall, progress) -> ChatResult:
        """One call with retries and exponential backoff; its final failure is its result, never an exception."""
        endpoint = self.endpoint
        async with semaphore:
            for attempt in range(endpoint.retries + 1):
                result = await self._attempt(client, call, attempt)
                transient = isinstance(result.error, LLMTransportError) and result.error.retryable
                if not transient or attempt == endpoint.retries:
                    break
                await asyncio.sleep(endpoint.backoff_s * 2**attempt)
        if result.error is not None:
            logger.debug("chat request failed after %d attempt(s): %s", result.retries + 1, result.error)
        if progress is not None:
            progress(1)
        return result

    async def _attempt(self, client, call: ChatCall, attempt: int) -> ChatResult:
        """One HTTP request, its outcome sorted into text, transport error or content error."""
        openai = self._openai
        try:
            response = await client.chat.completions.create(
                model=self.endpoint.model, messages=list(call.messages), **call.sampling.params()
            )
        except openai.APIStatusError as exc:
            kind = LLMAuthError if exc.status_code in (401, 403) else LLMTransportError
            return ChatResult(None, kind(self._describe(exc), exc.status_code), attempt)
        except openai.APIConnectionError as exc:  # includes timeouts: no response at all
            return ChatResult(None, LLMTransportError(self._describe(exc), None), attempt)
        except (openai.APIResponseValidationError, ValueError) as exc:  # ValueError: a body that is not JSON
            return ChatResult(None, LLMContentError(self._describe(exc)), attempt)
        choices = getattr(response, "choices", None)
        if not choices:
            error = LLMContentError(f"EmptyChoices: the answer from {self.endpoint.base_url} has no choices")
            return ChatResult(None, error, attempt)
        return ChatResult(choices[0].message.content or "", None, attempt)

    def _describe(self, exc: Exception) -> str:
        """``Type: message``; a refused key also names the environment variable it was read from."""
        text = f"{type(exc).__name__}: {exc}"
        if getattr(exc, "status_code", None) in (401, 403):
            text += f" (the key is read from ${self.endpoint.api_key_env})"
        return text
