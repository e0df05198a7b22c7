"""``themis demo``: the offline end-to-end run, one option per :class:`DemoConfig` field."""

from __future__ import annotations

from themis_rm.cli.base import console, fail, wide_console
from themis_rm.cli.options import config_command
from themis_rm.demo import DemoConfig


def _demo(config: DemoConfig) -> None:
    """Offline end-to-end demo: verified bug pairs -> train a tiny RM -> bench -> rerank -> report."""
    from themis_rm.demo import run_demo

    result = run_demo(config, console=wide_console())
    console.print(f"demo artefacts in {result.output}; report: {result.summary['report']}")


demo = config_command(DemoConfig, _demo, on_error=fail)
