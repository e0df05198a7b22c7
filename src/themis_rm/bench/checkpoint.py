"""Resuming ``themis bench``: the settings fingerprint in ``checkpoint.json`` and the scores already on disk.

``checkpoint.json`` (version 2)::

    {"fingerprint": "3f9a...", "fingerprint_version": 2,
     "settings": {"model": "...", "dtype": "bfloat16", "device": "cuda", "max_length": 4096, ..., "pairs": "c0de..."}}

The fingerprint hashes what the model *resolved* to — ``--dtype auto`` is bf16 on a GPU and fp32 on a CPU — so a
run started on one and restarted on the other is refused instead of mixing two precisions in one table. Keeping
the settings themselves lets the refusal say what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from themis_rm.criteria import PromptPack
from themis_rm.errors import ThemisInputError
from themis_rm.pairs import PreferencePair
from themis_rm.provenance import changed_settings

if TYPE_CHECKING:
    from themis_rm.bench.config import BenchConfig
    from themis_rm.scoring.protocols import PairScorer

logger = logging.getLogger(__name__)

PARTIAL_FILE = "scores.partial.jsonl"
CHECKPOINT_FILE = "checkpoint.json"
# 3: each pair's aspect is hashed with its texts (it chooses the pair's criterion prompt); 2: the resolved dtype and
# device type (a judge: its sampling) are hashed; 1 (no version key): the configured dtype.
FINGERPRINT_VERSION = 3


@dataclass(frozen=True)
class Fingerprint:
    """The settings a score depends on, and their hash."""

    settings: dict
    sha256: str


def run_fingerprint(
    config: BenchConfig, pack: PromptPack | None, pairs: list[PreferencePair], scorer: PairScorer
) -> Fingerprint:
    """Everything that changes a score: model, prompts, truncation, the dtype and device type the model runs in
    (as loaded, not as configured), a judge's sampling, and the pairs themselves."""
    settings = {
        "model": config.model,
        "prompt_mode": config.criterion,
        "pack": pack.sha256 if pack else None,
        "max_length": config.max_length,
        "prompt_overflow": config.prompt_overflow,
        "adapter": config.adapter,
        "adapter_spec": config.adapter_spec,
        **scorer.resolved_settings(),
        "pairs": _pairs_sha256(pairs),
    }
    return Fingerprint(settings, hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest())


def resume_scores(output: Path, fingerprint: Fingerprint) -> dict[str, dict]:
    """Scores already in ``scores.partial.jsonl`` for this exact run, by id; a torn last line is cut off.

    A directory without ``checkpoint.json`` starts over: the checkpoint is written and any partial file removed.

    Raises:
        ThemisInputError: ``output`` holds a run with other settings (see :func:`_check_checkpoint`).
    """
    checkpoint, partial = output / CHECKPOINT_FILE, output / PARTIAL_FILE
    if checkpoint.is_file():
        _check_checkpoint(output, fingerprint)
    else:
        _write_checkpoint(checkpoint, fingerprint)
        partial.unlink(missing_ok=True)
    done: dict[str, dict] = {}
    if not partial.is_file():
        return done
    data = partial.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):  # killed mid-write: drop the torn line before appending
        with partial.open("r+b") as handle:
            handle.truncate(len(complete))
    for line in complete.decode("utf-8").splitlines():
        record = json.loads(line)
        done[record["id"]] = record
    logger.info("resuming: %d pairs already scored in %s", len(done), partial)
    return done


def _pairs_sha256(pairs: list[PreferencePair]) -> str:
    """What was scored, pair by pair: id, texts and aspect (under ``--criterion aspect`` the aspect picks the system
    prompt; with the pack's hash and the prompt mode beside it, the rendered system prompt of every pair is fixed)."""
    text = "\x00".join(f"{p.id}\x01{p.prompt}\x01{p.chosen}\x01{p.rejected}\x01{p.aspect}" for p in pairs)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_checkpoint(output: Path, fingerprint: Fingerprint) -> None:
    """Refuse to append to scores made under other settings, naming the settings that changed.

    Raises:
        ThemisInputError: the settings or data differ, or the checkpoint is from an older fingerprint version
            (which recorded the configured dtype, not the one the model ran in).
    """
    stored = json.loads((output / CHECKPOINT_FILE).read_text(encoding="utf-8"))
    if stored.get("fingerprint_version") != FINGERPRINT_VERSION:
        raise ThemisInputError(
            f"{output} holds a run checkpointed by an older themis-rm (fingerprint version "
            f"{stored.get('fingerprint_version', 1)}, not {FINGERPRINT_VERSION}), which recorded less of what its "
            "scores depend on (see FINGERPRINT_VERSION); use another --output, or delete that directory to start over"
        )
    if stored.get("fingerprint") != fingerprint.sha256:
        changed = (
            ", ".join(changed_settings(stored.get("settings", {}), fingerprint.settings)) or "settings not recorded"
        )
        raise ThemisInputError(
            f"{output} holds a run with different settings or data ({changed}); rerun with its settings, "
            "use another --output, or delete that directory to start over"
        )


def _write_checkpoint(path: Path, fingerprint: Fingerprint) -> None:
    record = {
        "fingerprint": fingerprint.sha256,
        "fingerprint_version": FINGERPRINT_VERSION,
        "settings": fingerprint.settings,
    }
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
