"""``themis reward``: composite code rewards (reward model + sandboxed tests + static analysis) for groups."""

from __future__ import annotations

from themis_rm.cli.base import console, fail, progress_bar
from themis_rm.cli.options import config_command
from themis_rm.reward.job import RewardConfig


def _reward(config: RewardConfig) -> None:
    """Score groups of completions with the composite reward a spec describes; resumable, one group per line."""
    from themis_rm.reward.job import run_reward

    with progress_bar("groups") as (set_total, advance):
        summary = run_reward(config, on_start=set_total, progress=advance)
    console.print(
        f"rewarded {summary.groups} groups in {summary.seconds:.1f} s (resumed {summary.resumed}, skipped rows "
        f"{summary.skipped_rows}); {summary.executions} sandboxed runs, {summary.executions_saved} saved by the "
        f"cascade; {summary.gated} candidates gated -> {summary.output}"
    )


reward = config_command(RewardConfig, _reward, on_error=fail)
