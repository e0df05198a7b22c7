"""One training run's state and its edges: set up (build, resume, record), log/eval/save, finish (export, record).

``loop.py`` owns the steps; this module owns what surrounds them, so the loop reads top to bottom.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from themis_rm.errors import ThemisInputError
from themis_rm.pairs import skipped_rows
from themis_rm.provenance import file_sha256, package_version
from themis_rm.train.checkpoint import (
    CHECKPOINTS_DIR,
    TrainState,
    check_resume,
    find_resume_point,
    save_checkpoint,
    training_fingerprint,
)
from themis_rm.train.components import (
    RunData,
    build_accelerator,
    build_data,
    build_model,
    build_optimizer,
    build_scheduler,
    check_drop_share,
    effective_max_length,
    resolve_mixed_precision,
    use_packing,
)
from themis_rm.train.config import TrainConfig
from themis_rm.train.evaluate import evaluate
from themis_rm.train.export import export_state_dict, reward_state_dict
from themis_rm.train.metrics import MetricSink, build_sinks

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"


@dataclass
class TrainSummary:
    """What a finished run did: steps, last logged and eval metrics, counters, where the model went."""

    output: Path
    steps: int
    resumed_from: int
    metrics: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    main_process: bool = True


@dataclass
class TrainRun:
    """Everything one run holds once set up (prepared model, optimizer, scheduler, data, position, sinks)."""

    config: TrainConfig
    run_dir: Path
    accelerator: object
    model: torch.nn.Module
    tokenizer: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    data: RunData
    state: TrainState
    sinks: list[MetricSink]
    info: dict
    total_steps: int
    steps_per_epoch: int
    resumed_from: int
    started: float = field(default_factory=time.perf_counter)

    def log(self, metrics: Mapping[str, float]) -> None:
        if self.accelerator.is_main_process:
            for sink in self.sinks:
                sink.log(metrics, self.state.global_step)

    def evaluate(self) -> dict[str, float]:
        """Held-out accuracy by aspect (every process takes part); {} without ``--eval-data``."""
        if not self.data.eval:
            return {}
        batch_size = self.config.batch.eval_batch_size or self.config.batch.micro_batch_size
        metrics = evaluate(self.model, self.data.eval, self.data.eval_collator, self.accelerator, batch_size).metrics()
        self.log(metrics)
        return metrics

    def save(self) -> None:
        save_checkpoint(self.accelerator, self.run_dir, self.state, self.config.run.keep_checkpoints)


def start_run(config: TrainConfig, sinks: Sequence[MetricSink] | None = None) -> TrainRun:
    """Validate, build every component, resume from ``--resume``, and record the run's settings in ``run.json``."""
    from accelerate.utils import set_seed

    config.validate()
    run_dir = Path(config.output)
    accelerator = build_accelerator(config)
    set_seed(config.seed)
    model, tokenizer = build_model(config, accelerator)
    packed = use_packing(config.batch.packing, accelerator.device, model.config._attn_implementation)
    data = build_data(config, tokenizer, packed, effective_max_length(config, tokenizer, model))
    drop_check = check_drop_share(data, config.batch.max_drop_share, config.seed)
    steps_per_epoch = len(data.train) // config.batch.batch_size
    if steps_per_epoch == 0:
        raise ThemisInputError(f"--batch-size {config.batch.batch_size} exceeds the {len(data.train)} training pairs")
    total_steps = min(steps_per_epoch * config.run.epochs, config.run.max_steps or 10**12)
    optimizer = build_optimizer(model, config, accelerator.device)
    scheduler = build_scheduler(optimizer, config, total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    state = TrainState(counters=data.counters)
    accelerator.register_for_checkpointing(state)
    checkpoint = find_resume_point(run_dir, config.resume)
    pack = data.prompts.pack
    fingerprint = training_fingerprint(config.to_dict(), file_sha256(config.data), pack.sha256 if pack else None)
    if checkpoint is not None:
        check_resume(checkpoint, _recorded_fingerprint(checkpoint), fingerprint)
        accelerator.load_state(str(checkpoint))
        logger.info("resumed from %s at step %d", checkpoint, state.global_step)
    info = _run_info(config, accelerator, total_steps, packed, model, len(data.train))
    info["drop_check"] = drop_check
    info["skipped_rows"] = skipped_rows(data.skipped)
    info["fingerprint"] = fingerprint
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_run_json(run_dir, {**info, "status": "running", "resumed_from": state.global_step})
    if sinks is None:
        resume_step = state.global_step if checkpoint is not None else None
        main = accelerator.is_main_process
        sinks = build_sinks(config.run.report_to, run_dir, info, resume_step) if main else []
    return TrainRun(
        config, run_dir, accelerator, model, tokenizer, optimizer, scheduler, data, state, list(sinks), info,
        total_steps, steps_per_epoch, resumed_from=state.global_step,
    )  # fmt: skip


def finish_run(run: TrainRun, last_metrics: dict[str, float], eval_metrics: dict[str, float]) -> TrainSummary:
    """Final eval and checkpoint when the schedule did not just do them, counters summed, export, ``run.json``.

    The last step gets a resumable checkpoint only when ``save_every > 0`` (0 means no checkpoints at all); the
    export is always written.
    """
    config, state, accelerator = run.config, run.state, run.accelerator
    if run.data.eval and not (config.run.eval_every and state.global_step % config.run.eval_every == 0):
        eval_metrics = run.evaluate()
    if config.run.save_every and state.global_step % config.run.save_every:
        run.save()
    state.sync(accelerator)
    _export(run)
    summary = TrainSummary(
        run.run_dir,
        state.global_step,
        run.resumed_from,
        last_metrics,
        eval_metrics,
        dict(sorted(state.counters.items())),
        seconds=time.perf_counter() - run.started,
        main_process=accelerator.is_main_process,
    )
    if accelerator.is_main_process:
        _write_run_json(run.run_dir, {**run.info, "status": "done", **_summary_json(summary)})
        for sink in run.sinks:
            sink.close()
    _drain_collectives(accelerator)
    accelerator.end_training()
    return summary


GLOO_DRAIN_S = 0.2


def _drain_collectives(accelerator) -> None:
    """Let gloo's worker thread release its finished collectives before the process group is torn down.

    That thread drops each finished work (and the Python-owned tensors it holds) after the caller already saw it
    complete, which needs the GIL. If the main thread meanwhile frees the DDP reducer, the process group's
    destructor joins that thread while holding the GIL: a deadlock seen on a loaded 2-core machine, where a rank
    that had written everything never exited. A last barrier and a short GIL-free wait leave nothing in flight.
    """
    if accelerator.num_processes > 1 and torch.distributed.is_initialized():
        accelerator.wait_for_everyone()
        if torch.distributed.get_backend() == "gloo":
            time.sleep(GLOO_DRAIN_S)


# ------------------------------------------------------------------------------------------------- helpers
def _export(run: TrainRun) -> None:
    """Gather the weights (every process takes part) and write the seq-cls export on the main process."""
    accelerator, config = run.accelerator, run.config
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(run.model)
    state_dict = reward_state_dict(unwrapped) if config.lora.lora_r else accelerator.get_state_dict(run.model)
    if accelerator.is_main_process:
        dtype = config.run.export_dtype
        if dtype == "auto":
            dtype = "bf16" if resolve_mixed_precision(config.run.mixed_precision) == "bf16" else "fp32"
        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        export_state_dict(state_dict, unwrapped.config, run.tokenizer, run.run_dir, torch_dtype)
    accelerator.wait_for_everyone()


def _run_info(config: TrainConfig, accelerator, total_steps: int, packed: bool, model, n_pairs: int) -> dict:
    unwrapped = accelerator.unwrap_model(model)
    return {
        "config": config.to_dict(),
        "processes": accelerator.num_processes,
        "distributed_type": accelerator.distributed_type.name,
        "mixed_precision": accelerator.mixed_precision,
        "grad_accum": accelerator.gradient_accumulation_steps,
        "total_steps": total_steps,
        "train_pairs": n_pairs,
        "packing": packed,
        "lm_loss": unwrapped.lm_loss_kind if unwrapped.lm_head is not None else "none",
        "attn_implementation": unwrapped.config._attn_implementation,
        "activation_checkpointing": any(getattr(m, "gradient_checkpointing", False) for m in unwrapped.modules()),
        "versions": {p: package_version(p) for p in ("themis-rm", "torch", "transformers", "accelerate", "peft")},
    }


def _recorded_fingerprint(checkpoint: Path) -> dict | None:
    """The fingerprint in the ``run.json`` of the run ``checkpoint`` belongs to (``<run>/checkpoints/step-N``)."""
    run_json = checkpoint.parent.parent / RUN_FILE if checkpoint.parent.name == CHECKPOINTS_DIR else None
    if run_json is None or not run_json.is_file():
        return None
    return json.loads(run_json.read_text(encoding="utf-8")).get("fingerprint")


def _summary_json(summary: TrainSummary) -> dict:
    return {
        "resumed_from": summary.resumed_from,
        "steps": summary.steps,
        "seconds": round(summary.seconds, 3),
        "metrics": summary.metrics,
        "eval_metrics": summary.eval_metrics,
        "counters": summary.counters,
    }


def _write_run_json(run_dir: Path, payload: dict) -> None:
    tmp = run_dir / f".{RUN_FILE}.tmp"
    tmp.write_text(json.dumps(_finite(payload), indent=2, default=str), encoding="utf-8")
    tmp.replace(run_dir / RUN_FILE)


def _finite(value):
    """NaN/inf -> None, recursively: run.json stays strict JSON even when a metric is undefined."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
