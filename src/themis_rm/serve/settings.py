"""``ServeSettings``: every knob of ``themis serve``, from CLI flags or ``THEMIS_SERVE_*`` environment variables.

Validation happens here, once: every problem is collected and raised together as a :class:`ThemisInputError`
naming the flags, so a bad combination fails before the model is loaded.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

from themis_rm.errors import MissingExtraError, ThemisInputError
from themis_rm.serve.fields import HELP

try:
    from pydantic import Field, SecretStr, ValidationError, model_validator
    from pydantic_settings import BaseSettings, SettingsConfigDict
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("pydantic-settings", "serve") from exc

logger = logging.getLogger(__name__)

QWEN_ASSISTANT_MARKER = "<|im_start|>assistant\n"
DEFAULT_END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>")


def _field(default: Any, name: str, **constraints: Any) -> Any:
    return Field(default, description=HELP[name], **constraints)


class ServeSettings(BaseSettings):
    """Settings of one ``themis serve`` process (the fields' descriptions live in :mod:`.fields`)."""

    model_config = SettingsConfigDict(env_prefix="THEMIS_SERVE_", extra="forbid", frozen=True)

    # ---------------------------------------------------------------------------------------- model
    model: str = Field(description=HELP["model"])
    criteria: str = _field("none", "criteria")
    prompts: str | None = _field(None, "prompts")
    criteria_file: Path | None = _field(None, "criteria_file")
    dtype: str = _field("auto", "dtype")
    device: str = _field("auto", "device")
    max_length: int = _field(4096, "max_length", gt=0)
    batch_tokens: int | None = _field(None, "batch_tokens", gt=0)
    engine: str = _field("auto", "engine")
    adapter: str = _field("seqcls", "adapter")
    adapter_spec: str | None = _field(None, "adapter_spec")
    prompt_overflow: str = _field("truncate", "prompt_overflow")
    # ---------------------------------------------------------------------------------------- HTTP
    host: str = _field("127.0.0.1", "host")
    port: int = _field(8000, "port", ge=0, le=65535)
    api_key: SecretStr | None = _field(None, "api_key")
    served_model_name: str | None = _field(None, "served_model_name")
    log_level: str = _field("warning", "log_level")
    # ---------------------------------------------------------------------------------- /get_reward
    rerender: bool = _field(False, "rerender")
    assistant_marker: str = _field(QWEN_ASSISTANT_MARKER, "assistant_marker", min_length=1)
    end_markers: tuple[str, ...] = _field(DEFAULT_END_MARKERS, "end_markers")
    # ------------------------------------------------------------------------------ batching, limits
    max_batch_items: int = _field(256, "max_batch_items", gt=0)
    max_batch_tokens: int | None = _field(None, "max_batch_tokens", gt=0)
    max_wait_ms: float = _field(0.0, "max_wait_ms", ge=0)
    max_queue_items: int = _field(4096, "max_queue_items", gt=0)
    max_items_per_request: int = _field(1024, "max_items_per_request", gt=0)
    max_body_bytes: int = _field(16 * 2**20, "max_body_bytes", gt=0)
    request_timeout_s: float = _field(120.0, "request_timeout_s", gt=0)
    retry_after_s: int = _field(1, "retry_after_s", ge=0)
    shutdown_timeout_s: float = _field(30.0, "shutdown_timeout_s", gt=0)

    @model_validator(mode="before")
    @classmethod
    def _default_rerender(cls, data: Any) -> Any:
        """``--rerender`` unset: on exactly when criteria are asked for (the only way /get_reward can apply them)."""
        if isinstance(data, dict) and data.get("rerender") is None:
            criteria = str(data.get("criteria") or "none").strip().lower()
            data = {**data, "rerender": criteria != "none"}
        return data

    @model_validator(mode="after")
    def _check(self) -> ServeSettings:
        problems = []
        if self.criteria.strip().lower() != "none" and not self.rerender:
            problems.append(
                f"--criteria {self.criteria} with --no-rerender: /get_reward receives strings the policy already "
                "formatted, so a criterion prompt can only be added by re-rendering them; drop --no-rerender (or "
                "pass criteria per request to /v1/score and keep --criteria none)"
            )
        if "assistant" not in self.assistant_marker:
            problems.append(f"--assistant-marker must contain 'assistant', got {self.assistant_marker!r}")
        if self.max_items_per_request > self.max_queue_items:
            problems.append(
                f"--max-items-per-request ({self.max_items_per_request}) must not exceed --max-queue-items "
                f"({self.max_queue_items}), or a full-size request could never be queued"
            )
        if self.log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
            problems.append(f"--log-level must be critical, error, warning, info or debug, got {self.log_level!r}")
        if problems:
            raise ThemisInputError("; ".join(problems))
        if not _is_loopback(self.host) and self.api_key is None:
            logger.warning("serving on %s without --api-key: anyone who can reach it can use the model", self.host)
        return self

    @property
    def model_name(self) -> str:
        """The name answers carry: ``--served-model-name`` or the model id."""
        return self.served_model_name or self.model


def load_settings(**overrides: Any) -> ServeSettings:
    """Build settings from ``THEMIS_SERVE_*`` variables plus explicit values (CLI flags win).

    Raises:
        ThemisInputError: naming the flag and value of every field pydantic rejects.
    """
    try:
        return ServeSettings(**overrides)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise ThemisInputError("; ".join(problems)) from None


def _describe(error: dict) -> str:
    if not error["loc"]:
        return error["msg"]
    flag = "--" + str(error["loc"][0]).replace("_", "-")
    if error["type"] == "missing":
        return f"{flag} is required (or set THEMIS_SERVE_{str(error['loc'][0]).upper()})"
    return f"{flag}: {error['msg']}, got {error.get('input')!r}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
