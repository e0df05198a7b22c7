"""``python -m themis_rm.cli ...`` is ``themis ...`` (``accelerate launch -m themis_rm.cli train ...``)."""

from themis_rm.cli import app

app()
