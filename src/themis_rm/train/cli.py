"""Deprecated launch path: ``python -m themis_rm.train.cli ARGS`` is ``python -m themis_rm.cli train ARGS``.

Kept so recipes written for earlier versions (``accelerate launch -m themis_rm.train.cli ...``) keep working.
"""

if __name__ == "__main__":
    import logging
    import sys

    from themis_rm.cli import app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app(["train", *sys.argv[1:]])
