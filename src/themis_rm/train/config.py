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

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from themis_rm.config import config_leaves, config_to_dict, load_config, setting, validate_config
from themis_rm.pairs import SKIP_INVALID_HELP
from themis_rm.render import PROMPT_OVERFLOW_POLICIES
from themis_rm.scoring.config import CRITERIA_FILE_HELP, PROMPT_PACK_HELP

MAGNITUDE_FORMS = ("center", "abs_sum_sq")
OVERFLOW_POLICIES = ("truncate", "drop")
SWITCHES = ("auto", "on", "off")
MIXED_PRECISION = ("auto", "bf16", "fp16", "no")
WEIGHT_DTYPES = ("fp32", "bf16")
EXPORT_DTYPES = ("auto", "fp32", "bf16")
TRACKERS = ("jsonl", "tensorboard", "wandb")


@dataclass
class LossConfig:
    """Loss section: Bradley-Terry plus the LM regulariser and the magnitude penalty."""

    lm_weight: float = setting(
        0.25, "λ: weight of the next-token loss on the chosen response tokens (PT 0.4, PM 0.25).", ge=0
    )
    magnitude_weight: float = setting(0.001, "μ: weight of the reward magnitude penalty (PT 0.01, PM 0.001).", ge=0)
    magnitude: str = setting(
        "center",
        "Penalty form: 'center' = (r_c + r_r)^2 (paper, reward centring; leaves the margin free) or "
        "'abs_sum_sq' = (|r_c| + |r_r|)^2 (the authors' released code; also shrinks the margin).",
        choices=MAGNITUDE_FORMS,
    )
    lm_chunk_tokens: int = setting(
        4096, "Tokens per chunk of the CPU/fallback LM loss: peak memory is chunk x vocab logits, recomputed.", gt=0
    )
    liger: str = setting(
        "auto",
        "Fused linear cross-entropy of liger-kernel for the LM loss: auto (CUDA + installed), on, off.",
        choices=SWITCHES,
    )


@dataclass
class OptimConfig:
    """Optimizer section: AdamW and its cosine schedule."""

    lr: float = setting(1e-5, "Peak learning rate of AdamW (PT 2e-5, PM 1e-5).", gt=0)
    min_lr: float = setting(5e-7, "Terminal learning rate of the cosine decay (PT 1e-5, PM 5e-7).", ge=0)
    warmup_ratio: float = setting(0.05, "Share of the optimizer steps spent in linear warm-up from 0.", ge=0, lt=1)
    weight_decay: float = setting(
        0.1, "AdamW weight decay on the backbone's matrices (norms, 1-D parameters and the reward head: none).", ge=0
    )
    adam_beta1: float = setting(0.9, "AdamW beta1.", ge=0, lt=1)
    adam_beta2: float = setting(
        0.95, "AdamW beta2 (paper 0.95; torch default 0.999 reacts slower to loss spikes).", ge=0, lt=1
    )
    adam_eps: float = setting(1e-8, "AdamW epsilon.")
    max_grad_norm: float = setting(
        1.5, "Clip the global gradient norm to this (PT 2.0, PM 1.5); 0 disables clipping.", ge=0
    )
    fused: str = setting("auto", "Fused AdamW kernel: auto (on CUDA), on, off.", choices=SWITCHES)


@dataclass
class BatchConfig:
    """Batch section: pairs per step, per forward pass, and what happens to long pairs."""

    batch_size: int = setting(
        512, "Pairs per optimizer step over all processes (PT 1024, PM 512); = micro x accumulation x processes.", gt=0
    )
    micro_batch_size: int = setting(
        4,
        "Pairs per forward pass per process; larger is faster until memory runs out (accumulation fills the rest).",
        gt=0,
    )
    max_length: int = setting(
        4096, "Token budget per sequence (PT 2560, PM 4096); the response is cut first, closing tokens kept.", gt=0
    )
    overflow: str = setting(
        "truncate",
        "Over-length pairs: 'truncate' the responses (counted) or 'drop' the pair (counted).",
        choices=OVERFLOW_POLICIES,
    )
    prompt_overflow: str = setting(
        "truncate",
        "When a prompt leaves no room for the response: 'truncate' the prompt's end (counted) or 'error' — "
        "with 'error' such pairs are dropped and counted, never a crash.",
        choices=PROMPT_OVERFLOW_POLICIES,
    )
    max_drop_share: float = setting(
        0.2,
        "Fail before the first step when more than this share of the training pairs would be dropped (prompt too "
        "long, over-length under --overflow drop, identical sides), measured on a seeded sample; 1 turns it off.",
        ge=0,
    )
    packing: str = setting(
        "auto",
        "Padding-free packed rows (position_ids; each sequence's own last token): auto = on with CUDA + "
        "flash-attention, on, off. On CPU/sdpa packing is correct but slower.",
        choices=SWITCHES,
    )
    num_workers: int = setting(
        0, "DataLoader worker processes rendering and tokenising batches ahead of the GPU.", ge=0
    )
    eval_batch_size: int | None = setting(
        None, "Pairs per eval forward pass per process (default: micro_batch_size).", gt=0
    )


@dataclass
class RunConfig:
    """Run section: length, precision, logging, evaluation and checkpoints."""

    epochs: int = setting(
        1, "Passes over the training pairs (PT 2, PM 1); system prompts are re-sampled each epoch.", gt=0
    )
    max_steps: int | None = setting(None, "Stop after this many optimizer steps (the schedule is fitted to it).", gt=0)
    mixed_precision: str = setting(
        "auto",
        "Autocast precision: auto (bf16 where the GPU supports it, else none), bf16, fp16, no.",
        choices=MIXED_PRECISION,
    )
    dtype: str = setting(
        "fp32",
        "Weights' dtype: fp32 (master weights; 16 bytes/param with AdamW) or bf16 (half the memory, "
        "as the reference; lossy updates at small learning rates).",
        choices=WEIGHT_DTYPES,
    )
    attn_implementation: str = setting(
        "auto", "Attention kernel: auto (flash_attention_2 on CUDA when installed, else sdpa)."
    )
    gradient_checkpointing: bool = setting(
        False, "Recompute activations in the backward pass: ~30% slower steps, far less activation memory."
    )
    log_every: int = setting(1, "Optimizer steps between two metric records.", gt=0)
    eval_every: int = setting(0, "Optimizer steps between two evaluations on --eval-data (0: only at the end).", ge=0)
    save_every: int = setting(
        0,
        "Optimizer steps between two resumable checkpoints, plus one at the last step (0: no checkpoints; "
        "the model export at the end is always written).",
        ge=0,
    )
    keep_checkpoints: int = setting(2, "Resumable checkpoints kept on disk (oldest deleted first).", gt=0)
    report_to: tuple[str, ...] = setting(
        ("jsonl",), "Metric sinks: jsonl (always), tensorboard, wandb.", choices=TRACKERS
    )
    export_dtype: str = setting(
        "auto", "dtype of the exported model: auto (bf16 if trained with bf16, else fp32).", choices=EXPORT_DTYPES
    )


@dataclass
class LoraConfig:
    """LoRA section: adapters on the backbone's linear layers, merged on export."""

    lora_r: int = setting(0, "LoRA rank on the backbone's linear layers (0: full fine-tuning); merged on export.", ge=0)
    lora_alpha: int = setting(32, "LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = setting(0.0, "Dropout on the LoRA branch.", ge=0)
    lora_target_modules: str = setting(
        "all-linear", "Modules that get adapters: 'all-linear' or a comma list of names."
    )


SECTIONS: dict[str, type] = {
    "loss": LossConfig,
    "optim": OptimConfig,
    "batch": BatchConfig,
    "run": RunConfig,
    "lora": LoraConfig,
}


@dataclass
class TrainConfig:
    """Training config: data, model, prompts and the five sections of the recipe."""

    model: str | None = setting(
        None,
        "Base model (hub id or directory): a causal LM gets a zero-initialised reward head; a one-label "
        "seq-cls reward model (e.g. a PT export) continues with its head.",
        required=True,
    )
    data: str | None = setting(
        None, "Training pairs: .jsonl/.json/.parquet/.csv, a save_to_disk directory or a hub dataset id.", required=True
    )
    output: Path | None = setting(
        None, "Run directory: exported model, metrics.jsonl, run.json, checkpoints/.", required=True, flags=("-o",)
    )
    eval_data: str | None = setting(None, "Held-out pairs evaluated every --eval-every steps (accuracy by aspect).")
    split: str | None = setting(None, "Split of --data (dataset directory or hub id).")
    eval_split: str | None = setting(None, "Split of --eval-data.")
    prompt_pack: str | None = setting(None, PROMPT_PACK_HELP, deprecated=("--prompts",))
    criteria_file: Path | None = setting(None, CRITERIA_FILE_HELP)
    prompt_mix: tuple[float, ...] | None = setting(
        None, "Training prompt mix none,single,full (e.g. 0.15,0.60,0.25); default: the pack's."
    )
    skip_invalid: bool = setting(False, SKIP_INVALID_HELP)
    seed: int = setting(0, "Seed of weights' init, data order and criteria prompt sampling.")
    resume: str | None = setting(None, "'auto' (latest checkpoint in --output, if any) or a checkpoint directory.")
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    run: RunConfig = field(default_factory=RunConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with fields set by their names (``lr``, ``loss.lm_weight``); ``None`` means "not given"."""
        return load_config(TrainConfig, None, overrides, base=self, validate=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (the resolved config written to ``run.json``)."""
        return config_to_dict(self)

    def validate(self) -> None:
        """Check every field, collect every problem, raise once naming each flag."""
        validate_config(self)

    def problems(self) -> Iterator[str]:
        """The checks that span fields (each field's own choices and bounds are declared with it)."""
        o, b = self.optim, self.batch
        if o.min_lr > o.lr:
            yield f"--min-lr ({o.min_lr}) must not exceed --lr ({o.lr})"
        if b.micro_batch_size > 0 and b.batch_size % b.micro_batch_size:
            yield (
                f"--batch-size ({b.batch_size}) must be a multiple of --micro-batch-size "
                f"({b.micro_batch_size}) times the number of processes"
            )
        mix = self.prompt_mix
        if mix is not None and (len(mix) != 3 or any(p < 0 for p in mix) or abs(sum(mix) - 1) > 1e-6):
            yield f"--prompt-mix must be three probabilities none,single,full summing to 1, got {mix}"
        if self.resume is not None and self.resume != "auto" and not Path(self.resume).is_dir():
            yield f"--resume must be 'auto' or an existing checkpoint directory, got {self.resume!r}"


def field_help(name: str) -> str:
    """The help text of a config field, for the CLI option of the same name."""
    for leaf in config_leaves(TrainConfig):
        if leaf.name == name:
            return leaf.help
    raise KeyError(name)


def all_field_names() -> list[str]:
    """Every settable field name (top level and sections), each of which is a CLI flag."""
    return [leaf.name for leaf in config_leaves(TrainConfig)]


RECIPES_DIR = Path(__file__).parent / "configs"
"""The shipped recipes (``pt.yaml``, ``pm.yaml``): ``themis train --config pm`` names one."""


def load_recipe(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a recipe YAML onto ``base`` (defaults); unknown keys and wrong types are errors naming the key."""
    return load_config(TrainConfig, path, base=base, validate=False)
