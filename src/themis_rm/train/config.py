"""``TrainConfig``: every knob of ``themis train``, documented once, loadable from a recipe YAML, overridable by flags.

Each field's ``help`` metadata is its only documentation: the CLI help reads it (:func:`field_help`) and the shipped
recipe YAMLs repeat its trade-off in comments. Precedence is defaults < recipe YAML (``--config``) < CLI flags.
The defaults are the paper's PM stage (code preferences); ``configs/pt.yaml`` holds the PT stage.

A recipe YAML groups fields by section, e.g.::

    model: Qwen/Qwen3-8B-Base
    loss: {lm_weight: 0.4, magnitude_weight: 0.01}
    optim: {lr: 2.0e-5, min_lr: 1.0e-5, max_grad_norm: 2.0}
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from themis_rm.errors import ThemisInputError
from themis_rm.yamlfile import read_yaml_mapping

MAGNITUDE_FORMS = ("center", "abs_sum_sq")
OVERFLOW_POLICIES = ("truncate", "drop")
SWITCHES = ("auto", "on", "off")
MIXED_PRECISION = ("auto", "bf16", "fp16", "no")
WEIGHT_DTYPES = ("fp32", "bf16")
EXPORT_DTYPES = ("auto", "fp32", "bf16")
TRACKERS = ("jsonl", "tensorboard", "wandb")


def knob(default: Any, help: str) -> Any:
    """A config field with its one help text (CLI help and YAML comments come from it)."""
    if isinstance(default, list | dict | set):
        raise TypeError("use an immutable default (tuple) for config fields")
    return field(default=default, metadata={"help": help})


@dataclass
class LossConfig:
    lm_weight: float = knob(0.25, "λ: weight of the next-token loss on the chosen response tokens (PT 0.4, PM 0.25).")
    magnitude_weight: float = knob(0.001, "μ: weight of the reward magnitude penalty (PT 0.01, PM 0.001).")
    magnitude: str = knob(
        "center",
        "Penalty form: 'center' = (r_c + r_r)^2 (paper, reward centring; leaves the margin free) or "
        "'abs_sum_sq' = (|r_c| + |r_r|)^2 (the authors' released code; also shrinks the margin).",
    )
    lm_chunk_tokens: int = knob(
        4096, "Tokens per chunk of the CPU/fallback LM loss: peak memory is chunk x vocab logits, recomputed."
    )
    liger: str = knob(
        "auto", "Fused linear cross-entropy of liger-kernel for the LM loss: auto (CUDA + installed), on, off."
    )


@dataclass
class OptimConfig:
    lr: float = knob(1e-5, "Peak learning rate of AdamW (PT 2e-5, PM 1e-5).")
    min_lr: float = knob(5e-7, "Terminal learning rate of the cosine decay (PT 1e-5, PM 5e-7).")
    warmup_ratio: float = knob(0.05, "Share of the optimizer steps spent in linear warm-up from 0.")
    weight_decay: float = knob(
        0.1, "AdamW weight decay on the backbone's matrices (norms, 1-D parameters and the reward head: none)."
    )
    adam_beta1: float = knob(0.9, "AdamW beta1.")
    adam_beta2: float = knob(0.95, "AdamW beta2 (paper 0.95; torch default 0.999 reacts slower to loss spikes).")
    adam_eps: float = knob(1e-8, "AdamW epsilon.")
    max_grad_norm: float = knob(1.5, "Clip the global gradient norm to this (PT 2.0, PM 1.5); 0 disables clipping.")
    fused: str = knob("auto", "Fused AdamW kernel: auto (on CUDA), on, off.")


@dataclass
class BatchConfig:
    batch_size: int = knob(
        512, "Pairs per optimizer step over all processes (PT 1024, PM 512); = micro x accumulation x processes."
    )
    micro_batch_size: int = knob(
        4, "Pairs per forward pass per process; larger is faster until memory runs out (accumulation fills the rest)."
    )
    max_length: int = knob(
        4096, "Token budget per sequence (PT 2560, PM 4096); the response is cut first, closing tokens kept."
    )
    overflow: str = knob(
        "truncate", "Over-length pairs: 'truncate' the responses (counted) or 'drop' the pair (counted)."
    )
    prompt_overflow: str = knob(
        "truncate",
        "When a prompt leaves no room for the response: 'truncate' the prompt's end (counted) or 'error' — "
        "with 'error' such pairs are dropped and counted, never a crash.",
    )
    packing: str = knob(
        "auto",
        "Padding-free packed rows (position_ids; each sequence's own last token): auto = on with CUDA + "
        "flash-attention, on, off. On CPU/sdpa packing is correct but slower.",
    )
    num_workers: int = knob(0, "DataLoader worker processes rendering and tokenising batches ahead of the GPU.")
    eval_batch_size: int | None = knob(None, "Pairs per eval forward pass per process (default: micro_batch_size).")


@dataclass
class RunConfig:
    epochs: int = knob(1, "Passes over the training pairs (PT 2, PM 1); system prompts are re-sampled each epoch.")
    max_steps: int | None = knob(None, "Stop after this many optimizer steps (the schedule is fitted to it).")
    mixed_precision: str = knob(
        "auto", "Autocast precision: auto (bf16 where the GPU supports it, else none), bf16, fp16, no."
    )
    dtype: str = knob(
        "fp32",
        "Weights' dtype: fp32 (master weights; 16 bytes/param with AdamW) or bf16 (half the memory, "
        "as the reference; lossy updates at small learning rates).",
    )
    attn_implementation: str = knob(
        "auto", "Attention kernel: auto (flash_attention_2 on CUDA when installed, else sdpa)."
    )
    gradient_checkpointing: bool = knob(
        False, "Recompute activations in the backward pass: ~30% slower steps, far less activation memory."
    )
    log_every: int = knob(1, "Optimizer steps between two metric records.")
    eval_every: int = knob(0, "Optimizer steps between two evaluations on --eval-data (0: only at the end).")
    save_every: int = knob(
        0,
        "Optimizer steps between two resumable checkpoints, plus one at the last step (0: no checkpoints; "
        "the model export at the end is always written).",
    )
    keep_checkpoints: int = knob(2, "Resumable checkpoints kept on disk (oldest deleted first).")
    report_to: tuple[str, ...] = knob(("jsonl",), "Metric sinks: jsonl (always), tensorboard, wandb.")
    export_dtype: str = knob("auto", "dtype of the exported model: auto (bf16 if trained with bf16, else fp32).")


@dataclass
class LoraConfig:
    lora_r: int = knob(0, "LoRA rank on the backbone's linear layers (0: full fine-tuning); merged on export.")
    lora_alpha: int = knob(32, "LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = knob(0.0, "Dropout on the LoRA branch.")
    lora_target_modules: str = knob("all-linear", "Modules that get adapters: 'all-linear' or a comma list of names.")


SECTIONS: dict[str, type] = {
    "loss": LossConfig,
    "optim": OptimConfig,
    "batch": BatchConfig,
    "run": RunConfig,
    "lora": LoraConfig,
}


@dataclass
class TrainConfig:
    model: str | None = knob(
        None,
        "Base model (hub id or directory): a causal LM gets a zero-initialised reward head; a one-label "
        "seq-cls reward model (e.g. a PT export) continues with its head.",
    )
    data: str | None = knob(
        None, "Training pairs: .jsonl/.json/.parquet/.csv, a save_to_disk directory or a hub dataset id."
    )
    output: Path | None = knob(None, "Run directory: exported model, metrics.jsonl, run.json, checkpoints/.")  # noqa: RUF009
    eval_data: str | None = knob(None, "Held-out pairs evaluated every --eval-every steps (accuracy by aspect).")
    split: str | None = knob(None, "Split of --data (dataset directory or hub id).")
    eval_split: str | None = knob(None, "Split of --eval-data.")
    prompts: str | None = knob(None, "Prompt pack for the criteria prompts: official, open, or a pack file.")
    criteria_file: Path | None = knob(None, "TOML with user-defined [[criteria]] added to the pack.")  # noqa: RUF009
    prompt_mix: tuple[float, ...] | None = knob(
        None, "Training prompt mix none,single,full (e.g. 0.15,0.60,0.25); default: the pack's."
    )
    skip_invalid: bool = knob(False, "Count and skip malformed rows instead of failing on the first.")
    seed: int = knob(0, "Seed of weights' init, data order and criteria prompt sampling.")
    resume: str | None = knob(None, "'auto' (latest checkpoint in --output, if any) or a checkpoint directory.")
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    run: RunConfig = field(default_factory=RunConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def with_overrides(self, overrides: dict[str, Any], source: str = "flag") -> TrainConfig:
        """A copy with fields set by their (unique) names.

        From flags (``source="flag"``) ``None`` means "not given" and is skipped; from a YAML file an explicit
        ``null`` resets an optional field.
        """
        config = dataclasses.replace(self, **{s: dataclasses.replace(getattr(self, s)) for s in SECTIONS})
        for name, value in overrides.items():
            if value is None and source == "flag":
                continue
            owner = _owner_of(config, name, source)
            setattr(owner, name, _coerce(type(owner), name, value, _label(name, source)))
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (the resolved config written to ``run.json``)."""
        return _jsonable(dataclasses.asdict(self))

    def validate(self) -> None:
        """Check every field, collect every problem, raise once naming each flag."""
        problems = list(_problems(self))
        if problems:
            raise ThemisInputError("invalid training config:\n  " + "\n  ".join(problems))


def field_help(name: str) -> str:
    """The help text of a config field, for the CLI option of the same name."""
    for cls in (TrainConfig, *SECTIONS.values()):
        for f in dataclasses.fields(cls):
            if f.name == name:
                return f.metadata["help"]
    raise KeyError(name)


def all_field_names() -> list[str]:
    """Every settable field name (top level and sections), each of which is a CLI flag."""
    top = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in SECTIONS]
    return top + [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]


def load_recipe(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a recipe YAML onto ``base`` (defaults); unknown keys and wrong types are errors naming the key."""
    path = Path(path)
    data = read_yaml_mapping(path, what="the recipe YAML", where=f"--config {path}", extra="train")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ThemisInputError(f"{path}: section '{key}' must be a mapping")
            valid = {f.name for f in dataclasses.fields(SECTIONS[key])}
            for name, inner in value.items():
                if name not in valid:
                    raise ThemisInputError(f"{path}: unknown key '{key}.{name}' (valid: {', '.join(sorted(valid))})")
                flat[name] = inner
        else:
            flat[key] = value
    return (base or TrainConfig()).with_overrides(flat, source=str(path))


# ------------------------------------------------------------------------------------------------ internals
def _owner_of(config: TrainConfig, name: str, source: str) -> Any:
    if name in SECTIONS:
        raise ThemisInputError(f"{source}: '{name}' is a section; set its fields (e.g. {name}.<field>)")
    if name in {f.name for f in dataclasses.fields(TrainConfig)}:
        return config
    for section in SECTIONS:
        owner = getattr(config, section)
        if name in {f.name for f in dataclasses.fields(owner)}:
            return owner
    raise ThemisInputError(f"{source}: unknown setting {name!r} (valid: {', '.join(sorted(all_field_names()))})")


def _label(name: str, source: str) -> str:
    flag = "--" + name.replace("_", "-")
    return flag if source == "flag" else f"{source}: {_yaml_key(name)}"


def _yaml_key(name: str) -> str:
    for section, cls in SECTIONS.items():
        if name in {f.name for f in dataclasses.fields(cls)}:
            return f"{section}.{name}"
    return name


def _coerce(cls: type, name: str, value: Any, label: str) -> Any:
    """Convert a YAML/CLI value to the field's annotated type; a mismatch names the flag or YAML key."""
    hint = typing.get_type_hints(cls)[name]
    options = [t for t in typing.get_args(hint) if t is not type(None)] if _is_union(hint) else [hint]
    if value is None:
        if _is_union(hint) and type(None) in typing.get_args(hint):
            return None
        raise ThemisInputError(f"{label} cannot be null")
    target = options[0]
    origin = typing.get_origin(target)
    try:
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            item_type = typing.get_args(target)[0]
            return tuple(item_type(x.strip() if isinstance(x, str) else x) for x in items)
        if target is bool:
            if isinstance(value, bool):
                return value
            raise TypeError
        if target is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if target is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if target is str and isinstance(value, str):
            return value
        if target is Path and isinstance(value, str | Path):
            return Path(value)
        raise TypeError
    except (TypeError, ValueError) as exc:
        want = getattr(target, "__name__", str(target))
        raise ThemisInputError(f"{label} must be {want}, got {value!r}") from exc


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _choice(problems: list[str], name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        problems.append(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {value!r}")


def _problems(c: TrainConfig):
    """Yield one line per problem; each names the flag (the YAML key is the same name in its section)."""
    for name in ("model", "data", "output"):
        if getattr(c, name) is None:
            yield f"--{name} is required (or '{name}:' in the recipe YAML)"
    checks: list[str] = []
    _choice(checks, "magnitude", c.loss.magnitude, MAGNITUDE_FORMS)
    _choice(checks, "liger", c.loss.liger, SWITCHES)
    _choice(checks, "fused", c.optim.fused, SWITCHES)
    _choice(checks, "overflow", c.batch.overflow, OVERFLOW_POLICIES)
    _choice(checks, "prompt_overflow", c.batch.prompt_overflow, ("truncate", "error"))
    _choice(checks, "packing", c.batch.packing, SWITCHES)
    _choice(checks, "mixed_precision", c.run.mixed_precision, MIXED_PRECISION)
    _choice(checks, "dtype", c.run.dtype, WEIGHT_DTYPES)
    _choice(checks, "export_dtype", c.run.export_dtype, EXPORT_DTYPES)
    yield from checks
    for tracker in c.run.report_to:
        if tracker not in TRACKERS:
            yield f"--report-to entries must be among {', '.join(TRACKERS)}, got {tracker!r}"
    non_negative = {
        "lm_weight": c.loss.lm_weight,
        "magnitude_weight": c.loss.magnitude_weight,
        "weight_decay": c.optim.weight_decay,
        "max_grad_norm": c.optim.max_grad_norm,
        "min_lr": c.optim.min_lr,
        "num_workers": c.batch.num_workers,
        "eval_every": c.run.eval_every,
        "save_every": c.run.save_every,
        "lora_r": c.lora.lora_r,
        "lora_dropout": c.lora.lora_dropout,
    }
    for name, value in non_negative.items():
        if value < 0:
            yield f"--{name.replace('_', '-')} must be >= 0, got {value}"
    positive = {
        "lr": c.optim.lr,
        "batch_size": c.batch.batch_size,
        "micro_batch_size": c.batch.micro_batch_size,
        "max_length": c.batch.max_length,
        "lm_chunk_tokens": c.loss.lm_chunk_tokens,
        "epochs": c.run.epochs,
        "log_every": c.run.log_every,
        "keep_checkpoints": c.run.keep_checkpoints,
    }
    for name, value in positive.items():
        if value <= 0:
            yield f"--{name.replace('_', '-')} must be > 0, got {value}"
    if c.optim.min_lr > c.optim.lr:
        yield f"--min-lr ({c.optim.min_lr}) must not exceed --lr ({c.optim.lr})"
    if not 0 <= c.optim.warmup_ratio < 1:
        yield f"--warmup-ratio must be in [0, 1), got {c.optim.warmup_ratio}"
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(c.optim, name) < 1:
            yield f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(c.optim, name)}"
    if c.batch.micro_batch_size > 0 and c.batch.batch_size % c.batch.micro_batch_size:
        yield (
            f"--batch-size ({c.batch.batch_size}) must be a multiple of --micro-batch-size "
            f"({c.batch.micro_batch_size}) times the number of processes"
        )
    if c.run.max_steps is not None and c.run.max_steps <= 0:
        yield f"--max-steps must be > 0, got {c.run.max_steps}"
    if c.batch.eval_batch_size is not None and c.batch.eval_batch_size <= 0:
        yield f"--eval-batch-size must be > 0, got {c.batch.eval_batch_size}"
    if c.prompt_mix is not None and (
        len(c.prompt_mix) != 3 or any(p < 0 for p in c.prompt_mix) or abs(sum(c.prompt_mix) - 1) > 1e-6
    ):
        yield f"--prompt-mix must be three probabilities none,single,full summing to 1, got {c.prompt_mix}"
    if c.resume is not None and c.resume != "auto" and not Path(c.resume).is_dir():
        yield f"--resume must be 'auto' or an existing checkpoint directory, got {c.resume!r}"
