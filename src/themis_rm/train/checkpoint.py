"""Resumable checkpoints: ``accelerator.save_state`` (model, optimizer, scheduler, RNG) + the data position.

A checkpoint is written to ``checkpoints/.tmp-step-N`` by every process and renamed to ``checkpoints/step-N`` by
the main one once all have finished, so a ``step-*`` directory is always complete: a run killed mid-write leaves
only a ``.tmp-*`` directory, which ``--resume auto`` ignores and the next save removes.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from themis_rm.errors import ThemisInputError
from themis_rm.provenance import changed_settings

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class TrainState:
    """Where the run is: registered with accelerate so it travels inside every checkpoint.

    ``step_in_epoch`` counts optimizer steps already taken in ``epoch``; the data plan of an epoch is a pure
    function of (seed, epoch), so these two numbers are the data position.

    ``counters`` are run totals, equal on every process; ``pending`` holds this process's counts since the last
    :meth:`sync`. Only the main process's copy is saved, so every save syncs first.
    """

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    counters: Counter = field(default_factory=Counter)
    pending: Counter = field(default_factory=Counter)

    def sync(self, accelerator) -> None:
        """Add every process's pending counts to the run totals (a collective: all processes call it)."""
        from accelerate.utils import gather_object

        parts = gather_object([dict(self.pending)]) if accelerator.num_processes > 1 else [dict(self.pending)]
        for part in parts:
            self.counters.update(part)
        self.pending.clear()

    def state_dict(self) -> dict:
        return {
            "global_step": self.global_step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "counters": dict(self.counters),
        }

    def load_state_dict(self, state: dict) -> None:
        self.global_step = int(state["global_step"])
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.counters = Counter(state.get("counters", {}))
        self.pending = Counter()


def save_checkpoint(accelerator, run_dir: Path, state: TrainState, keep: int) -> Path:
    """Write ``checkpoints/step-<step>`` atomically and keep the newest ``keep`` checkpoints (all processes call)."""
    state.sync(accelerator)
    step = state.global_step
    root = run_dir / CHECKPOINTS_DIR
    tmp, final = root / f".tmp-step-{step}", root / f"step-{step}"
    if accelerator.is_main_process:
        for stale in root.glob(".tmp-step-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = run_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def find_resume_point(run_dir: Path, resume: str | None) -> Path | None:
    """The checkpoint ``--resume`` names: ``auto`` = the newest in ``run_dir`` (None when there is none)."""
    if resume is None:
        return None
    if resume == "auto":
        checkpoints = list_checkpoints(run_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume)
    if not path.is_dir():
        raise ThemisInputError(f"--resume {resume}: not a checkpoint directory")
    return path


RESUME_FREE_SETTINGS = frozenset(
    {
        "output",
        "resume",
        "eval_data",
        "eval_split",
        "batch.num_workers",
        "batch.eval_batch_size",
        "batch.max_drop_share",
        "run.log_every",
        "run.eval_every",
        "run.save_every",
        "run.keep_checkpoints",
        "run.report_to",
        "run.export_dtype",
    }
)
"""Settings a resumed run may change: where and how often it reports, evaluates, saves and exports. Every other
setting changes the weights a step produces, so a resume under another value is refused."""


def training_fingerprint(config_dict: dict, data_sha256: str | None, pack_sha256: str | None) -> dict:
    """Every setting that changes the result, flattened (``optim.lr``), with the data file's content hash (the
    path alone would not see an edited file) and the prompt pack's hash (``official`` names no fixed strings)."""
    flat = _flatten(config_dict)
    settings = {key: value for key, value in flat.items() if key not in RESUME_FREE_SETTINGS}
    return {**settings, "data_sha256": data_sha256, "prompt_pack_sha256": pack_sha256}


def check_resume(checkpoint: Path, recorded: dict | None, fingerprint: dict) -> None:
    """Refuse to continue ``checkpoint`` under settings or data other than those it was trained with.

    Args:
        recorded: the fingerprint in the run's ``run.json``; None (a run from before fingerprints) only warns.

    Raises:
        ThemisInputError: naming every changed setting, before and after.
    """
    if recorded is None:
        logger.warning("%s: the run records no fingerprint (older themis-rm); resuming without checking it", checkpoint)
        return
    changed = changed_settings(recorded, fingerprint)
    if changed:
        raise ThemisInputError(
            f"--resume {checkpoint}: the run was trained with other settings or data ({'; '.join(changed)}); "
            "resume with its settings, or start a new run in another --output"
        )


def _flatten(mapping: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat
