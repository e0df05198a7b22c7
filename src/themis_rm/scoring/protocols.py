"""The plug point of ``themis bench``: what a pair scorer offers, whether a reward model or a generative judge.

:class:`~themis_rm.scoring.scorer.Scorer` (a reward model) and
:class:`~themis_rm.scoring.judge_pairs.JudgePairScorer` (an OpenAI-compatible judge) both satisfy
:class:`PairScorer`, so the bench loop, its checkpoint and the robustness pass call one face instead of asking
which one they hold. Import-light: nothing here loads torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from themis_rm.pairs import PreferencePair
    from themis_rm.scoring.scorer import PairScores


class PairScorer(Protocol):
    """Scores chosen and rejected of preference pairs and says what produced the scores."""

    def score_pairs(
        self,
        pairs: Sequence[PreferencePair],
        criteria: str | Sequence[str] | None = ...,
        progress: Callable[[int], None] | None = None,
    ) -> PairScores:
        """Both sides of every pair, in input order; ``criteria="aspect"`` uses each pair's own aspect."""
        ...

    def score_variant(
        self, pairs: Sequence[PreferencePair], criteria: str | Sequence[str] | None, variant: str
    ) -> PairScores:
        """Like :meth:`score_pairs` for a rewritten copy of the run's pairs (a perturbation kind ``variant``).

        The pairs keep the clean ids, so a scorer that logs per-id output (a judge's raw answers) tags it with
        ``variant``; a reward model's scores do not depend on it.
        """
        ...

    def resolved_settings(self) -> dict:
        """What the scorer resolved when it was built (a model's dtype and device type, a judge's sampling).

        Hashed into a bench checkpoint's fingerprint, so a resume under other effective settings is refused.
        """
        ...

    def settings(self, criteria: str | Sequence[str] | None = None) -> dict:
        """Everything that produced the scores, for ``run.json``."""
        ...

    def work_counters(self) -> dict:
        """Counters of the work done so far (batches and tokens, or judge requests and failures)."""
        ...
