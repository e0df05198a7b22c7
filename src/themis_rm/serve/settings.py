"""``ServeSettings``: every knob of ``themis serve``, from flags, ``--config serve.yaml`` or ``THEMIS_SERVE_*``.

Declared with :func:`themis_rm.config.setting` like every other job's config, so the flags, the YAML keys and the
environment variables are the field names, and validation happens once, before the model is loaded: every
problem is collected and raised together as a :class:`ThemisInputError` naming the flags. Light on purpose (no
pydantic): ``themis --help`` builds the options from these fields without the ``serve`` extra.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from themis_rm.config import load_config, setting
from themis_rm.render import PROMPT_OVERFLOW_POLICIES
from themis_rm.scoring.config import CRITERIA_FILE_HELP, ENGINE_HELP, ENGINES, PROMPT_PACK_HELP

logger = logging.getLogger(__name__)

ENV_PREFIX = "THEMIS_SERVE_"
QWEN_ASSISTANT_MARKER = "<|im_start|>assistant\n"
DEFAULT_END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
_OLD_PROMPTS_ENV = ENV_PREFIX + "PROMPTS"  # before 0.2: the pack was the field ``prompts``


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` are masked, :meth:`get_secret_value` reveals it.

    The same reading API as pydantic's ``SecretStr``, which the settings used before, so callers stay unchanged.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value = value.get_secret_value() if isinstance(value, Secret) else str(value)

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """Serve settings: one ``themis serve`` process (each field is a flag, a --config key and an env variable)."""

    # ---------------------------------------------------------------------------------------- model
    model: str | None = setting(None, "Reward model: hub id or local directory.", required=True)
    criteria: str = setting(
        "none",
        "Criteria of every conversation the server renders (/get_reward with --rerender, /score, /rerank, chat "
        "/classify) and the default of /v1/rewards: a name or alias (runtime, "
        "security, ...), a comma list, 'full' or 'none'.",
    )
    prompt_pack: str | None = setting(None, PROMPT_PACK_HELP, deprecated=("--prompts",))
    criteria_file: Path | None = setting(None, CRITERIA_FILE_HELP)
    reward_spec: Path | None = setting(
        None,
        "A composite reward spec (themis reward's): adds POST /v1/group_rewards, which takes one GRPO group "
        "(prompt, completions, tests) and answers the scalars and the components; its rm components score with "
        "this server's model.",
    )
    dtype: str = setting("auto", "auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")
    device: str = setting("auto", "auto, cpu, cuda, cuda:1, ...")
    max_length: int = setting(
        4096,
        "Token budget per sequence: structured items lose the end of their response, raw strings their beginning "
        "(the end, where the reward is read, is kept).",
        gt=0,
    )
    batch_tokens: int | None = setting(None, "Padded tokens per forward pass (default 16k on CPU, 64k on GPU).", gt=0)
    engine: str = setting("auto", ENGINE_HELP, choices=ENGINES)
    adapter: str = setting("seqcls", "How the model yields a reward: seqcls, head or lm-logprob.")
    adapter_spec: str | None = setting(None, "JSON spec for --adapter head or lm-logprob.")
    prompt_overflow: str = setting(
        "truncate",
        "When a prompt leaves no room for the response: 'truncate' or 'error'.",
        choices=PROMPT_OVERFLOW_POLICIES,
    )
    # ---------------------------------------------------------------------------------------- HTTP
    host: str = setting(
        "127.0.0.1", "Interface to bind. Loopback by default; put a proxy with TLS in front before exposing it."
    )
    port: int = setting(8000, "TCP port.", ge=0, lt=65536)
    api_key: Secret | None = setting(
        None,
        "Bearer token every request except GET /health must carry (env THEMIS_SERVE_API_KEY keeps it out of the "
        "process list).",
        secret=True,
    )
    served_model_name: str | None = setting(
        None, "Model name the answers echo and /v1/models lists (default: --model)."
    )
    log_level: str = setting("warning", "uvicorn log level: critical, error, warning, info, debug.", choices=LOG_LEVELS)
    # ---------------------------------------------------------------------------------- /get_reward
    rerender: bool | None = setting(
        None,
        "/get_reward: split each chat-formatted query into prompt and response and render them again with the "
        "reward model's own template and criterion prompt, instead of scoring the string as sent. Default: on "
        "when --criteria is not 'none' (the only way /get_reward can apply criteria), else off.",
    )
    assistant_marker: str = setting(
        QWEN_ASSISTANT_MARKER,
        "/get_reward --rerender: the policy template's assistant header; the response starts after its last "
        "occurrence (when no 'prompts' are sent). Must contain the word 'assistant'.",
    )
    end_markers: tuple[str, ...] = setting(
        DEFAULT_END_MARKERS,
        "/get_reward --rerender: end-of-turn and padding strings stripped from the end of each turn (repeatable).",
        flags=("--end-marker",),
    )
    # ------------------------------------------------------------------------------ batching, limits
    max_batch_items: int = setting(256, "Most sequences one cross-request batch gathers.", gt=0)
    max_batch_tokens: int | None = setting(
        None, "Most real tokens one cross-request batch gathers (default: --batch-tokens).", gt=0
    )
    max_wait_ms: float = setting(
        0.0,
        "How long the oldest waiting request may hold an idle model for others to join its batch. 0: never; "
        "requests that arrive while the model works form the next batch (continuous batching).",
        ge=0,
    )
    max_queue_items: int = setting(
        4096, "Most sequences waiting for the model; beyond it requests get --queue-full-status with Retry-After.", gt=0
    )
    queue_full_status: int = setting(
        503,
        "HTTP status of a full-queue answer: 503 (verl retries 5xx but raises on any 4xx; OpenRLHF retries both) "
        "or 429 (the standard 'too many requests', for clients that honour it).",
        choices=(429, 503),
    )
    max_items_per_request: int = setting(
        1024, "Most sequences one request may carry (items x criteria); beyond it: 413.", gt=0
    )
    max_request_tokens: int = setting(
        2**20,
        "Most tokens one request may bring to the model, over all its sequences (each after its cut to "
        "--max-length); beyond it: 413. Rendering stops at the chunk that passes it.",
        gt=0,
    )
    max_body_bytes: int = setting(16 * 2**20, "Largest request body accepted; beyond it: 413.", gt=0)
    request_timeout_s: float = setting(
        120.0, "Seconds a request may take from arrival to answer; beyond it: 503 with Retry-After.", gt=0
    )
    retry_after_s: int = setting(1, "Seconds sent in Retry-After with 429 and 503 answers.", ge=0)
    shutdown_timeout_s: float = setting(
        30.0, "Seconds a graceful shutdown waits for in-flight requests and batches to finish.", gt=0
    )

    def __post_init__(self) -> None:
        """Resolve what depends on other fields, and warn about an open bind (values are checked by ``problems``)."""
        if self.rerender is None:  # on exactly when criteria are asked for: the only way /get_reward applies them
            object.__setattr__(self, "rerender", _asks_criteria(self.criteria))
        if self.api_key is not None and not isinstance(self.api_key, Secret):
            object.__setattr__(self, "api_key", Secret(self.api_key))
        if self.prompt_pack is None and os.environ.get(_OLD_PROMPTS_ENV):
            logger.warning("$%s is deprecated; use $%sPROMPT_PACK", _OLD_PROMPTS_ENV, ENV_PREFIX)
            object.__setattr__(self, "prompt_pack", os.environ[_OLD_PROMPTS_ENV])
        if not _is_loopback(self.host) and self.api_key is None:
            logger.warning("serving on %s without --api-key: anyone who can reach it can use the model", self.host)

    def problems(self) -> Iterator[str]:
        """The checks that span fields (each field's own choices and bounds are declared with it)."""
        if _asks_criteria(self.criteria) and not self.rerender:
            yield (
                f"--criteria {self.criteria} with --no-rerender: /get_reward receives strings the policy already "
                "formatted, so a criterion prompt can only be added by re-rendering them; drop --no-rerender (or "
                "pass criteria per request to /v1/rewards and keep --criteria none)"
            )
        if "assistant" not in self.assistant_marker:
            yield f"--assistant-marker must contain 'assistant', got {self.assistant_marker!r}"
        if self.max_request_tokens < self.max_length:
            yield (
                f"--max-request-tokens ({self.max_request_tokens}) must be at least --max-length "
                f"({self.max_length}), or one full-length sequence could never be scored"
            )
        if self.max_items_per_request > self.max_queue_items:
            yield (
                f"--max-items-per-request ({self.max_items_per_request}) must not exceed --max-queue-items "
                f"({self.max_queue_items}), or a full-size request could never be queued"
            )

    @property
    def model_name(self) -> str:
        """The name answers carry: ``--served-model-name`` or the model id."""
        return self.served_model_name or self.model


def load_settings(path: str | Path | None = None, **overrides: Any) -> ServeSettings:
    """Build and validate settings: defaults < YAML at ``path`` < ``THEMIS_SERVE_*`` variables < ``overrides``.

    Raises:
        ThemisInputError: naming the flag and value of every problem at once.
    """
    return load_config(ServeSettings, path, overrides, env_prefix=ENV_PREFIX)


def _asks_criteria(criteria: str | None) -> bool:
    return str(criteria or "none").strip().lower() != "none"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
