"""The settings every scoring job shares: which model, how it reads a reward, and which prompt pack.

``ScoreConfig``, ``BenchConfig`` and ``RerankConfig`` extend :class:`ModelConfig`; the server's settings carry the
same names (:class:`ModelFields`), so :meth:`Scorer.from_job_config` builds a scorer from any of them. Light on
purpose (no torch): the CLI builds its options from these fields before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from themis_rm.config import setting
from themis_rm.pairs import SKIP_INVALID_HELP, FieldMap
from themis_rm.render import PROMPT_OVERFLOW_POLICIES

ASPECT = "aspect"  # criteria mode: each row under its own aspect's prompt (the paper's setting)
PROMPT_PACK_HELP = (
    "Prompt pack: 'official' (the Themis strings, fetched and verified), 'open' (ours), or a JSON/TOML file in the "
    "layout of themis_system_prompts.json. Default: $THEMIS_PROMPTS, then 'official'."
)
CRITERIA_FILE_HELP = "TOML with user-defined [[criteria]] (key, title, text, aliases) added to the pack."
ENGINES = ("auto", "prefix", "packed", "padded")
ENGINE_HELP = (
    "auto (shared-prefix KV reuse when it saves tokens; packed varlen rows on CUDA+flash-attn; else length-sorted "
    "padded batches), prefix, packed or padded; all give the plain forward's scores."
)


@dataclass(kw_only=True)
class PackConfig:
    """Where the criteria prompts come from (every job that renders a criterion prompt)."""

    prompt_pack: str | None = setting(None, PROMPT_PACK_HELP, deprecated=("--prompts",))
    criteria_file: Path | None = setting(None, CRITERIA_FILE_HELP)


@dataclass(kw_only=True)
class ModelConfig(PackConfig):
    """The model fields every scoring job config shares (``ScoreConfig``, ``BenchConfig``, ``RerankConfig``)."""

    model: str | None = setting(None, "Reward model: hub id or local directory.", required=True)
    dtype: str = setting("auto", "auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")
    device: str = setting("auto", "auto, cpu, cuda, cuda:1, ...")
    max_length: int = setting(4096, "Token budget per sequence; responses are cut first.", gt=0)
    batch_tokens: int | None = setting(None, "Padded tokens per forward pass (default 16k on CPU, 64k on GPU).", gt=0)
    prompt_overflow: str = setting(
        "truncate",
        "When a prompt leaves no room for the response: 'truncate' (keep half the budget for the response, cut "
        "the end of the prompt; counted) or 'error'.",
        choices=PROMPT_OVERFLOW_POLICIES,
    )
    adapter: str = setting(
        "seqcls",
        "How the model yields a reward: seqcls, head (custom scalar head, needs --adapter-spec), lm-logprob (a "
        "causal LM's log p(yes) - log p(no) where it answers a question), or judge (bench: an LLM judge served "
        "over an OpenAI-compatible API).",
    )
    adapter_spec: str | None = setting(
        None,
        "JSON file: head spec (pooling, head, weights, ...) or logprob spec (question, suffix, yes, no, "
        "attributes with weights; see the README).",
    )
    engine: str = setting("auto", ENGINE_HELP, choices=ENGINES)
    judge_url: str | None = setting(None, "--adapter judge: OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1.")
    judge_parser: str = setting("boxed", "--adapter judge: boxed, json or last_number.")
    judge_template: str | None = setting(
        None, "--adapter judge: file with a str.format template ({prompt} {response} {criterion})."
    )
    judge_concurrency: int = setting(8, "--adapter judge: requests in flight.", ge=1)


@dataclass(kw_only=True)
class ScoreConfig(ModelConfig):
    """Settings of one ``themis score`` run (each field is the flag of the same name and a key of --config)."""

    input: Path | None = setting(
        None,
        "Pairs or responses: .jsonl/.json/.parquet/.csv, a save_to_disk directory, or a hub dataset id.",
        required=True,
        flags=("-i",),
    )
    output: Path | None = setting(None, "Scores: .jsonl (settings beside it) or .json.", required=True, flags=("-o",))
    criterion: str = setting(
        "none",
        "Criteria: a name or alias (runtime, security, ...), a comma list, 'full', 'none', or 'aspect' (each "
        "row's own aspect).",
    )
    fields: FieldMap = setting(default_factory=FieldMap, flag_format="{name}-field")
    split: str | None = setting(None, "Split of a dataset directory or hub id.")
    skip_invalid: bool = setting(False, SKIP_INVALID_HELP)
    limit: int | None = setting(None, "Score only the first N valid rows.", ge=1)


class ModelFields(Protocol):
    """The model fields every job's config carries (``ModelConfig`` and ``ServeSettings`` both do)."""

    model: str
    dtype: str
    device: str
    max_length: int
    batch_tokens: int | None
    prompt_overflow: str
    adapter: str
    adapter_spec: str | None
    engine: str
