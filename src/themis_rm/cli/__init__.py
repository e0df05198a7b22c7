"""The ``themis`` command line: one typer command per job, each built from the job's config dataclass.

Layering: ``cli`` -> job config + run function (``themis_rm.<job>``) -> library. Library modules never import
``cli``. Every command's options are generated from its config's fields (:mod:`themis_rm.cli.options`), so
``--config run.yaml`` and the flags set the same names; :mod:`themis_rm.cli.base` holds the one console, error
wrapper and progress bar they share. ``python -m themis_rm.cli`` runs the same app (what ``accelerate launch -m``
needs for multi-GPU training).
"""

from themis_rm.cli.main import app

__all__ = ["app"]
