"""Where training metrics go: a :class:`MetricSink` protocol with JSONL (always), TensorBoard and W&B sinks.

Sinks live on the main process only; the loop hands them already-reduced numbers (means over every micro-batch of
the step and every process), one record per ``log_every`` steps and one per evaluation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from themis_rm.errors import MissingExtraError

METRICS_FILE = "metrics.jsonl"


@runtime_checkable
class MetricSink(Protocol):
    """Receives one flat record of named numbers per call."""

    def log(self, metrics: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One JSON object per line, ``{"step": N, ...}``, flushed at once so a killed run keeps its history.

    On resume the file is cut back to the records of steps at or before the checkpoint, so records never repeat.
    """

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None or not self.path.is_file():
            self.path.write_text("", encoding="utf-8")
        else:
            _truncate_after(self.path, resume_step)
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        record = {"step": step, **{k: _finite(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """Scalars under the run directory's ``tensorboard/``; needs the ``tensorboard`` package (train extra)."""

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise MissingExtraError("tensorboard", "train") from exc
        self._writer = SummaryWriter(str(log_dir))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(name, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    """Weights & Biases run with the resolved config; needs ``wandb`` installed and logged in."""

    def __init__(self, project: str, config: Mapping[str, Any], run_dir: str | Path) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise MissingExtraError("wandb", "train") from exc
        self._run = wandb.init(project=project, config=dict(config), dir=str(run_dir))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log(dict(metrics), step=step)

    def close(self) -> None:
        self._run.finish()


def build_sinks(
    report_to: Sequence[str], run_dir: Path, config: Mapping[str, Any], resume_step: int | None
) -> list[MetricSink]:
    """JSONL always, plus the optional sinks named in ``--report-to``."""
    sinks: list[MetricSink] = [JsonlSink(run_dir / METRICS_FILE, resume_step)]
    if "tensorboard" in report_to:
        sinks.append(TensorBoardSink(run_dir / "tensorboard"))
    if "wandb" in report_to:
        sinks.append(WandbSink("themis-rm", config, run_dir))
    return sinks


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The records of a ``metrics.jsonl`` (for tests and reports)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _truncate_after(path: Path, step: int) -> None:
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _finite(value: float) -> float | None:
    """JSON has no NaN/inf: write null, so a diverged run stays parseable."""
    return value if isinstance(value, int) or math.isfinite(value) else None
