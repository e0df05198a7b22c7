"""The datatrove names this package builds on (imported in one place, so a missing extra names its pip extra) and
the counting step every stage of ours derives from."""

from themis_rm.errors import MissingExtraError

try:
    from datatrove.data import Document, DocumentsPipeline
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.filters.base_filter import BaseFilter
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("datatrove", "data") from exc

__all__ = ["BaseFilter", "CountingStep", "Document", "DocumentsPipeline", "PipelineStep"]


class CountingStep(PipelineStep):
    """A step whose outcomes are ``forwarded`` or a drop reason, recorded as datatrove stats.

    Every document seen adds to ``total``; a drop adds to ``dropped`` and ``dropped_<reason>`` (the names
    datatrove's own filters use), so a stage's stats always satisfy ``total == forwarded + dropped``.
    """

    def count(self, outcome: str, value: int = 1) -> None:
        self.stat_update("total", value=value)
        if outcome == "forwarded":
            self.stat_update("forwarded", value=value)
        else:
            self.stat_update("dropped", f"dropped_{outcome}", value=value)
