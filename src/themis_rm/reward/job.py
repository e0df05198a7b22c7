"""``themis reward``: composite rewards for a file of groups, written one group per line, resumable.

Groups are scored in batches (one model pass and one analyser run per component per batch); each batch's lines
are appended and synced before the next starts, so a run that stops is resumed by the same command: the groups
already written are kept (a half-written last line is dropped) and only the rest is scored. A summary (settings,
counts, executions run and saved by the cascade, the sandbox's isolation and toolchains) goes to
``<output>.run.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from themis_rm.atomic import refuse_overwrite, write_text_atomic
from themis_rm.config import config_to_dict, setting, validate_config
from themis_rm.errors import ThemisInputError
from themis_rm.reward.composite import CompositeReward
from themis_rm.reward.groups import load_groups
from themis_rm.reward.spec import load_reward_spec, spec_to_dict


@dataclass(kw_only=True)
class RewardConfig:
    """Settings of one ``themis reward`` run."""

    spec: Path | None = setting(
        None, "Reward spec: YAML, TOML or JSON (components, rm, cascade, execution).", required=True
    )
    input: Path | None = setting(
        None, "Groups: .jsonl/.json/.parquet/.csv with id, prompt, completions and tests.", required=True, flags=("-i",)
    )
    output: Path | None = setting(None, "Rewards: .jsonl, one group per line.", required=True, flags=("-o",))
    batch_groups: int = setting(16, "Groups scored per batch (one checkpoint each).", ge=1)
    limit: int | None = setting(None, "Score only the first N groups.", ge=1)
    skip_invalid: bool = setting(False, "Skip invalid rows (counted in the summary) instead of failing.")


@dataclass(frozen=True)
class RewardSummary:
    groups: int
    resumed: int
    skipped_rows: int
    executions: int
    executions_saved: int
    gated: int
    seconds: float
    output: Path


def run_reward(
    config: RewardConfig,
    *,
    on_start: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RewardSummary:
    """Score every group of ``config.input`` not yet in ``config.output``."""
    validate_config(config)
    refuse_overwrite({"--output": config.output}, {"--input": config.input, "--spec": config.spec})
    spec = load_reward_spec(config.spec)  # a bad spec fails here, before any model loads
    loaded = load_groups(config.input, skip_invalid=config.skip_invalid)
    groups = loaded.rows[: config.limit] if config.limit else loaded.rows
    _unique_ids(groups, config.input)
    reward = CompositeReward(spec)
    reward.check(groups)  # a missing toolchain or an unsupported test style fails here, not mid-run
    done = _resume(config.output)
    todo = [g for g in groups if g.id not in done]
    if on_start is not None:
        on_start(len(todo))
    started = time.perf_counter()
    executions = saved = gated = 0
    config.output.parent.mkdir(parents=True, exist_ok=True)
    with config.output.open("a", encoding="utf-8") as out:
        for start in range(0, len(todo), config.batch_groups):
            batch = todo[start : start + config.batch_groups]
            results = reward.score(batch)
            for result in results:
                out.write(json.dumps(result.to_record(), ensure_ascii=False, allow_nan=False) + "\n")
                executions += result.executions
                saved += result.executions_saved
                gated += sum(c.gated_by is not None for c in result.candidates)
            out.flush()
            os.fsync(out.fileno())
            if progress is not None:
                progress(len(batch))
    seconds = time.perf_counter() - started
    summary = RewardSummary(len(todo), len(done), len(loaded.skipped), executions, saved, gated, seconds, config.output)
    _write_run(config, spec, summary, reward)
    return summary


def _unique_ids(groups, source: Path) -> None:
    seen: set[str] = set()
    for group in groups:
        if group.id in seen:
            raise ThemisInputError(f"{source}: group id {group.id!r} appears twice; resuming needs unique ids")
        seen.add(group.id)


def _resume(output: Path) -> set[str]:
    """Ids already written; a last line cut by a crash is removed so the file stays valid JSONL."""
    if not output.exists():
        return set()
    lines = output.read_text(encoding="utf-8").splitlines(keepends=True)
    done, keep = set(), []
    for number, line in enumerate(lines, 1):
        try:
            done.add(json.loads(line)["id"])
            keep.append(line)
        except (ValueError, KeyError, TypeError):
            if number != len(lines):
                raise ThemisInputError(f"{output}: line {number} is not a reward record; remove the file") from None
    if len(keep) != len(lines) or (keep and not keep[-1].endswith("\n")):
        write_text_atomic(output, "".join(line if line.endswith("\n") else line + "\n" for line in keep))
    return done


def _write_run(config: RewardConfig, spec, summary: RewardSummary, reward: CompositeReward) -> None:
    from themis_rm.reward.static import coverage
    from themis_rm.sandbox import isolation
    from themis_rm.sandbox.toolchains import available

    run = {
        "config": config_to_dict(config),
        "spec": spec_to_dict(spec),
        "groups_scored": summary.groups,
        "groups_resumed": summary.resumed,
        "skipped_rows": summary.skipped_rows,
        "executions": summary.executions,
        "executions_saved_by_cascade": summary.executions_saved,
        "gated_candidates": summary.gated,
        "seconds": round(summary.seconds, 3),
        "execution_backend": reward.executor.name,
        "sandbox_isolation": isolation().describe() if reward.executor.name == "local" else None,
        "toolchains": {name: a.detail if a.ok else f"unavailable: {a.detail}" for name, a in available().items()},
        "static_analyzers": coverage(reward.analyzers),
    }
    write_text_atomic(Path(f"{config.output}.run.json"), json.dumps(run, indent=1) + "\n")
