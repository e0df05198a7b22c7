"""themis-rm: multilingual, multi-criteria code reward models — score, bench, train, serve, data."""

from importlib import metadata

from themis_rm.criteria import CRITERIA, FULL, PromptPack, PromptSampler, SamplingProbs
from themis_rm.errors import (
    CriteriaError,
    PromptPackError,
    RenderError,
    ThemisError,
    ThemisInputError,
)
from themis_rm.packs import load_prompt_pack
from themis_rm.pairs import FieldMap, PreferencePair, ScoreRequest, load_pairs, load_responses
from themis_rm.render import ChatRenderer, RenderedSequence


def __getattr__(name: str):
    """Import the scorer (and with it torch) on first use, so `themis --help` and light modules stay fast."""
    if name == "Scorer":
        from themis_rm.scoring import Scorer

        return Scorer
    raise AttributeError(f"module 'themis_rm' has no attribute {name!r}")


try:
    __version__ = metadata.version("themis-rm")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"

__all__ = [
    "CRITERIA",
    "FULL",
    "ChatRenderer",
    "CriteriaError",
    "FieldMap",
    "PreferencePair",
    "PromptPack",
    "PromptPackError",
    "PromptSampler",
    "RenderError",
    "RenderedSequence",
    "SamplingProbs",
    "ScoreRequest",
    "Scorer",
    "ThemisError",
    "ThemisInputError",
    "__version__",
    "load_pairs",
    "load_prompt_pack",
    "load_responses",
]
