"""``themis serve``: the typer command (mounted in ``themis_rm.cli`` with ``app.command()(serve)``).

Options mirror :class:`ServeSettings` one to one and default to None, so ``THEMIS_SERVE_*`` variables fill
whatever the command line leaves out. Imports nothing from the ``serve`` extra until the command runs, so
``themis --help`` works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from themis_rm.errors import ThemisError
from themis_rm.serve.fields import HELP


def _opt(name: str, *flags: str) -> typer.models.OptionInfo:
    return typer.Option(*flags, help=HELP[name], show_default=False)


def serve(
    model: Annotated[str | None, _opt("model")] = None,
    criteria: Annotated[str | None, _opt("criteria")] = None,
    host: Annotated[str | None, _opt("host")] = None,
    port: Annotated[int | None, _opt("port")] = None,
    api_key: Annotated[str | None, _opt("api_key")] = None,
    prompts: Annotated[str | None, _opt("prompts")] = None,
    criteria_file: Annotated[Path | None, _opt("criteria_file")] = None,
    dtype: Annotated[str | None, _opt("dtype")] = None,
    device: Annotated[str | None, _opt("device")] = None,
    max_length: Annotated[int | None, _opt("max_length")] = None,
    batch_tokens: Annotated[int | None, _opt("batch_tokens")] = None,
    engine: Annotated[str | None, _opt("engine")] = None,
    adapter: Annotated[str | None, _opt("adapter")] = None,
    adapter_spec: Annotated[str | None, _opt("adapter_spec")] = None,
    prompt_overflow: Annotated[str | None, _opt("prompt_overflow")] = None,
    served_model_name: Annotated[str | None, _opt("served_model_name")] = None,
    rerender: Annotated[bool | None, _opt("rerender", "--rerender/--no-rerender")] = None,
    assistant_marker: Annotated[str | None, _opt("assistant_marker")] = None,
    end_markers: Annotated[list[str] | None, _opt("end_markers", "--end-marker")] = None,
    max_batch_items: Annotated[int | None, _opt("max_batch_items")] = None,
    max_batch_tokens: Annotated[int | None, _opt("max_batch_tokens")] = None,
    max_wait_ms: Annotated[float | None, _opt("max_wait_ms")] = None,
    max_queue_items: Annotated[int | None, _opt("max_queue_items")] = None,
    max_items_per_request: Annotated[int | None, _opt("max_items_per_request")] = None,
    max_body_bytes: Annotated[int | None, _opt("max_body_bytes")] = None,
    request_timeout_s: Annotated[float | None, _opt("request_timeout_s")] = None,
    retry_after_s: Annotated[int | None, _opt("retry_after_s")] = None,
    shutdown_timeout_s: Annotated[float | None, _opt("shutdown_timeout_s")] = None,
    log_level: Annotated[str | None, _opt("log_level")] = None,
) -> None:
    """Serve rewards over HTTP to RL loops: /get_reward (OpenRLHF), /classify (verl), /v1/score, /metrics."""
    given = {name: value for name, value in locals().items() if value is not None}
    try:
        import uvicorn

        from themis_rm.serve.app import create_app
        from themis_rm.serve.settings import load_settings

        settings = load_settings(**given)
        app = create_app(settings)
    except ImportError as exc:
        typer.echo(f"error: {exc.name} is not installed; install it with: pip install 'themis-rm[serve]'", err=True)
        raise typer.Exit(2) from exc
    except ThemisError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"serving {settings.model_name} on http://{settings.host}:{settings.port}", err=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
    )
