"""``themis serve``: rewards over HTTP, one option per :class:`ServeSettings` field (plus ``--config serve.yaml``).

``THEMIS_SERVE_*`` variables fill whatever the command line leaves out (and override the YAML). Imports nothing
from the ``serve`` extra until the command runs, so ``themis --help`` works without it.
"""

from __future__ import annotations

import typer

from themis_rm.cli.base import fail
from themis_rm.cli.options import config_command
from themis_rm.errors import MissingExtraError
from themis_rm.serve.settings import ENV_PREFIX, ServeSettings


def _serve(settings: ServeSettings) -> None:
    """Serve rewards over HTTP to RL loops: /get_reward (OpenRLHF), /classify (verl), vLLM's /score and /rerank,
    /v1/rewards, /metrics."""
    try:
        import uvicorn

        from themis_rm.serve.app import create_app

        app = create_app(settings)  # loads the model now, before the port opens
    except ImportError as exc:
        raise MissingExtraError(exc.name or "a serve dependency", "serve") from exc
    typer.echo(f"serving {settings.model_name} on http://{settings.host}:{settings.port}", err=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
    )


serve = config_command(ServeSettings, _serve, env_prefix=ENV_PREFIX, on_error=fail)
