"""Builders for one training run: accelerator, model, optimizer, schedule and data, each from ``TrainConfig``.

``session.start_run`` calls these in order and ``loop.py`` runs the steps; nothing here hides a step of training.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import torch

from themis_rm.criteria import PromptPack
from themis_rm.errors import ThemisInputError
from themis_rm.packs import resolve_pack
from themis_rm.readers import InvalidRow
from themis_rm.render import ChatRenderer
from themis_rm.scoring.models import load_tokenizer, resolve_attention
from themis_rm.scoring.scorer import capped_max_length
from themis_rm.train.batching import PairCollator
from themis_rm.train.config import TrainConfig
from themis_rm.train.data import SystemPrompts, TrainingPair, load_training_pairs
from themis_rm.train.model import RewardModel, apply_lora, decoder_layer_classes, load_backbone

logger = logging.getLogger(__name__)


def resolve_mixed_precision(setting: str) -> str:
    """``auto`` -> bf16 on a GPU that supports it, else ``no`` (CPU bf16 matmuls are slow on AVX2 machines)."""
    if setting != "auto":
        return setting
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


LAUNCHER_WORLD_SIZE_VARS = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_world_size(environ: Mapping[str, str] | None = None) -> int:
    """How many processes the launcher started (torchrun/accelerate set ``WORLD_SIZE``, MPI its own variable)."""
    environ = os.environ if environ is None else environ
    sizes = [int(environ[name]) for name in LAUNCHER_WORLD_SIZE_VARS if environ.get(name, "").isdigit()]
    return max(sizes, default=1)


def check_launch(num_processes: int, distributed_type: str, environ: Mapping[str, str] | None = None) -> None:
    """Fail at once when a multi-process launch did not become one distributed group.

    ``accelerate launch`` with a GPU config (FSDP2, DeepSpeed, multi-GPU) or ``torchrun`` on a machine without
    GPUs starts N processes, and accelerate silently sets each one up alone: N independent trainers that race on
    one ``--output``. Each process sees the launcher's world size but a one-process accelerator.
    """
    environ = os.environ if environ is None else environ
    launched = launched_world_size(environ)
    if launched > 1 and num_processes != launched:
        cuda = f"{torch.cuda.device_count()} CUDA devices" if torch.cuda.is_available() else "no CUDA device"
        raise ThemisInputError(
            f"the launcher started {launched} processes but accelerate set up {num_processes} (distributed type "
            f"{distributed_type}, {cuda}): each would train alone and overwrite the same --output. "
            "On a machine without GPUs, set ACCELERATE_USE_CPU=true for DDP over gloo "
            "(`ACCELERATE_USE_CPU=true accelerate launch ...` or `ACCELERATE_USE_CPU=true torchrun ...`); "
            "on GPUs, make the config's num_processes match the visible devices; "
            "or run one process without a launcher (docs/training.md, 'Launching')"
        )
    for engine in ("FSDP", "DEEPSPEED"):
        asked = environ.get(f"ACCELERATE_USE_{engine}", "").lower() in ("1", "true")
        if asked and distributed_type != engine and environ.get("RANK", "0") == "0":
            logger.warning(
                "the accelerate config asks for %s but this run is %s (%s is GPU-only in accelerate): the model "
                "is replicated on every process, not sharded",
                engine,
                distributed_type,
                engine,
            )


def build_accelerator(config: TrainConfig):
    """An ``Accelerator`` whose gradient accumulation makes ``batch_size`` pairs per optimizer step.

    The scheduler is stepped by the loop once per optimizer step (``step_scheduler_with_optimizer=False``):
    the step count comes from this process's share of the data, so accelerate must not also multiply it by the
    number of processes (the reference relied on that multiplication to undo its unsharded count).
    """
    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin

    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(config.run.mixed_precision),
        gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=1, sync_with_dataloader=False),
        step_scheduler_with_optimizer=False,
    )
    check_launch(accelerator.num_processes, accelerator.distributed_type.name)
    per_step = config.batch.micro_batch_size * accelerator.num_processes
    if config.batch.batch_size % per_step:
        raise ThemisInputError(
            f"--batch-size {config.batch.batch_size} is not a multiple of --micro-batch-size "
            f"{config.batch.micro_batch_size} x {accelerator.num_processes} processes"
        )
    accelerator.gradient_accumulation_steps = config.batch.batch_size // per_step
    deepspeed = getattr(accelerator.state, "deepspeed_plugin", None)
    if deepspeed is not None:  # the engine accumulates and clips itself: hand it our numbers (no loader is prepared)
        deepspeed.deepspeed_config["gradient_accumulation_steps"] = accelerator.gradient_accumulation_steps
        deepspeed.deepspeed_config["train_micro_batch_size_per_gpu"] = config.batch.micro_batch_size
        deepspeed.deepspeed_config["gradient_clipping"] = config.optim.max_grad_norm
    return accelerator


def build_model(config: TrainConfig, accelerator) -> tuple[RewardModel, object]:
    """Tokenizer and reward model: backbone loaded, LoRA applied, checkpointing on, FSDP wrap class set."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[config.run.dtype]
    attention = resolve_attention(config.run.attn_implementation, accelerator.device)
    with accelerator.main_process_first():
        tokenizer = load_tokenizer(config.model)
        model = load_backbone(config.model, dtype=dtype, attn_implementation=attention, loss=config.loss)
    if config.lora.lora_r:
        if accelerator.distributed_type.name in ("FSDP", "DEEPSPEED"):
            raise ThemisInputError("--lora-r with FSDP/DeepSpeed is not supported yet; use DDP or one process")
        model = apply_lora(model, config.lora)
    if config.run.gradient_checkpointing:
        _enable_checkpointing(model.decoder)
    fsdp = getattr(accelerator.state, "fsdp_plugin", None)
    if fsdp is not None and not getattr(fsdp, "transformer_cls_names_to_wrap", None):
        fsdp.transformer_cls_names_to_wrap = decoder_layer_classes(model.decoder)
        logger.info("FSDP wraps %s", fsdp.transformer_cls_names_to_wrap)
    model.configure_lm_loss(accelerator.device)
    return model, tokenizer


def _enable_checkpointing(decoder: torch.nn.Module) -> None:
    """Non-reentrant activation checkpointing (works with FSDP2 and frozen inputs); newer transformers rename it."""
    kwargs = {"use_reentrant": False}
    if hasattr(decoder, "activation_checkpointing_enable"):
        decoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        decoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def build_optimizer(model: RewardModel, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on the backbone's matrices only: not on norms, biases or the reward head.

    The reference decayed everything. The head is a ``(1, H)`` matrix, but decaying it would pull every reward
    towards 0 on top of the magnitude penalty, which is the one deliberate control of the reward scale (μ).
    """
    head = {id(p) for p in model.score.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    decayed = [p for p in params if p.ndim >= 2 and id(p) not in head]
    kept = [p for p in params if p.ndim < 2 or id(p) in head]
    groups = [
        {"params": decayed, "weight_decay": config.optim.weight_decay},
        {"params": kept, "weight_decay": 0.0},
    ]
    fused = config.optim.fused == "on" or (config.optim.fused == "auto" and device.type == "cuda")
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=config.optim.lr,
        betas=(config.optim.adam_beta1, config.optim.adam_beta2),
        eps=config.optim.adam_eps,
        fused=fused or None,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """Linear warm-up over ``warmup_ratio`` of the steps, then cosine from ``lr`` down to ``min_lr``."""
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    warmup = math.ceil(config.optim.warmup_ratio * total_steps)
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=warmup, num_training_steps=total_steps, min_lr=config.optim.min_lr
    )


@dataclass
class RunData:
    """Validated pairs, their prompts and collators, and the rows skipped while reading."""

    train: list[TrainingPair]
    eval: list[TrainingPair]
    prompts: SystemPrompts
    train_collator: PairCollator
    eval_collator: PairCollator
    counters: Counter
    skipped: list[InvalidRow] = field(default_factory=list)  # train's, then eval's (--skip-invalid)


def build_data(config: TrainConfig, tokenizer, packed: bool, max_length: int) -> RunData:
    """Read train/eval pairs (the pack is loaded only if some row lacks ``system``) and build the collators."""

    @cache
    def pack() -> PromptPack:
        return resolve_pack(config.prompt_pack, config.criteria_file)

    loaded = load_training_pairs(config.data, pack=pack, split=config.split, skip_invalid=config.skip_invalid)
    if not loaded.rows:
        raise ThemisInputError(f"--data {config.data}: no valid training pairs ({len(loaded.skipped)} skipped)")
    evaluation = []
    skipped = list(loaded.skipped)
    counters = Counter(dropped_invalid_rows=len(loaded.skipped))
    if config.eval_data:
        eval_loaded = load_training_pairs(
            config.eval_data, pack=pack, split=config.eval_split, skip_invalid=config.skip_invalid
        )
        evaluation = eval_loaded.rows
        counters["dropped_invalid_eval_rows"] = len(eval_loaded.skipped)
        skipped += eval_loaded.skipped
    needs_pack = any(p.system is None for p in (*loaded.rows, *evaluation)) or config.criteria_file is not None
    prompts = SystemPrompts(pack() if needs_pack else None, config.seed, config.prompt_mix)
    renderer = ChatRenderer(tokenizer, max_length, config.batch.prompt_overflow)
    pad_id = tokenizer.pad_token_id
    train_collator = PairCollator(renderer, prompts, pad_id, overflow=config.batch.overflow, packed=packed)
    eval_collator = PairCollator(renderer, prompts, pad_id, packed=packed, evaluation=True)
    return RunData(loaded.rows, evaluation, prompts, train_collator, eval_collator, counters, skipped)


DROP_CHECK_SAMPLE = 512
DROP_REASONS = (
    "dropped_prompt_too_long",
    "dropped_too_long",
    "dropped_identical_pairs",
    "dropped_identical_after_truncation",
)


def check_drop_share(data: RunData, max_share: float, seed: int, sample: int = DROP_CHECK_SAMPLE) -> dict[str, int]:
    """Render a seeded sample of the training pairs as epoch 0 will and fail when too many would be dropped.

    The collator drops and counts what cannot train (a prompt with no room left, an over-length pair under
    ``--overflow drop``, sides that render identical); without this check a run could train on 4 of 64 pairs and
    exit 0, the counters showing it only at the end.

    Returns:
        The sample's drop counts by reason (and ``sampled``), for ``run.json``.

    Raises:
        ThemisInputError: the sampled drop share exceeds ``max_share``, naming the reasons and the fixes.
    """
    import numpy as np

    if max_share >= 1:
        return {}
    pairs = data.train
    chosen = np.random.default_rng([seed, 7919]).permutation(len(pairs))[:sample].tolist()
    counts: Counter = Counter()
    for start in range(0, len(chosen), 64):
        counts += data.train_collator([(0, i, pairs[i]) for i in chosen[start : start + 64]]).counts
    drops = {reason: counts[reason] for reason in DROP_REASONS if counts[reason]}
    share = sum(drops.values()) / len(chosen)
    if share > max_share:
        reasons = ", ".join(f"{reason} {n}" for reason, n in drops.items())
        raise ThemisInputError(
            f"{share:.0%} of {len(chosen)} sampled training pairs would be dropped ({reasons}), above "
            f"--max-drop-share {max_share:g}: raise --max-length, shorten the system prompts (--prompt-pack), use "
            "--overflow truncate, or pass --max-drop-share 1 to train anyway"
        )
    if drops:
        logger.warning("%.0f%% of %d sampled training pairs will be dropped: %s", 100 * share, len(chosen), drops)
    return {"sampled": len(chosen), **drops}


def use_packing(setting: str, device: torch.device, attention: str) -> bool:
    """Packed rows pay off only with varlen flash kernels; sdpa on packed rows builds a dense block mask."""
    if setting == "auto":
        return device.type == "cuda" and attention.startswith("flash_attention")
    return setting == "on"


def effective_max_length(config: TrainConfig, tokenizer, model: RewardModel) -> int:
    """``--max-length`` capped by the tokenizer's and the model's position limits (logged when capped)."""
    return capped_max_length(config.batch.max_length, tokenizer, model.config)
