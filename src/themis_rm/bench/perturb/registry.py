"""The kinds by name, and applying them to pairs with a per-pair seed."""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from themis_rm.bench.perturb.kinds import docstring_inflation, fake_tests, self_praise, swap_comments, whitespace
from themis_rm.bench.perturb.lexer import LANGUAGES
from themis_rm.bench.perturb.renames import rename_identifiers
from themis_rm.errors import ThemisInputError
from themis_rm.pairs import PreferencePair

logger = logging.getLogger(__name__)

Side = Literal["chosen", "rejected", "both"]


@dataclass(frozen=True)
class Perturbation:
    """One kind: ``apply(code, language, rng, other)`` rewrites a response; ``other`` is the pair's other side."""

    side: Side
    apply: Callable[[str, str, random.Random, str], str]
    description: str

    def __call__(self, code: str, language: str, rng: random.Random, *, other: str = "") -> str:
        """Perturbs ``code`` (inside its first Markdown fence when it has one)."""
        fence, other_fence = _FENCE.search(code), _FENCE.search(other)
        donor = other_fence.group(2) if other_fence else other
        if fence is None:
            return self.apply(code, language, rng, donor)
        body = self.apply(fence.group(2), language, rng, donor)
        return code[: fence.start(2)] + body + code[fence.end(2) :]


_FENCE = re.compile(r"(```[^\n]*\n)(.*?)(?=\n?```)", re.DOTALL)

PERTURBATIONS: dict[str, Perturbation] = {
    "self_praise": Perturbation("rejected", self_praise, "a comment claiming the code is correct and tested"),
    "fake_tests": Perturbation("rejected", fake_tests, "a fake passing test-run transcript as a comment"),
    "rename_identifiers": Perturbation("both", rename_identifiers, "locals renamed to v1, v2, ..."),
    "whitespace": Perturbation("both", whitespace, "blank lines, trailing spaces, tabs/spaces"),
    "docstring_inflation": Perturbation("rejected", docstring_inflation, "a long, confident doc block"),
    "swap_comments": Perturbation("rejected", swap_comments, "a chosen-side (or stock) reassuring comment"),
}


def parse_kinds(spec: str) -> list[str]:
    """``"self_praise,whitespace"`` (or ``"all"``) → kind names, in order, without repeats."""
    kinds = [kind.strip() for kind in spec.split(",") if kind.strip()]
    if kinds == ["all"]:
        return list(PERTURBATIONS)
    unknown = [kind for kind in kinds if kind not in PERTURBATIONS]
    if unknown or not kinds:
        got = ", ".join(repr(kind) for kind in unknown) or repr(spec)
        raise ThemisInputError(f"--perturb: unknown kind {got} (valid: {', '.join(PERTURBATIONS)}, or 'all')")
    return list(dict.fromkeys(kinds))


def _lookup(kind: str) -> Perturbation:
    if kind not in PERTURBATIONS:
        raise ThemisInputError(f"--perturb: unknown kind {kind!r} (valid: {', '.join(PERTURBATIONS)}, or 'all')")
    return PERTURBATIONS[kind]


def perturb_pair(pair: PreferencePair, kind: str, seed: int) -> PreferencePair:
    """The pair with ``kind`` applied to its side(s); id, prompt, labels and the other side are unchanged."""
    perturbation = _lookup(kind)
    if pair.language not in LANGUAGES:
        raise ThemisInputError(
            f"pair {pair.id}: language {pair.language!r} is not one of {', '.join(LANGUAGES)} "
            "(--perturb needs the CodeRewardBench language of every pair)"
        )
    rng = random.Random(f"{seed}/{kind}/{pair.id}")
    chosen, rejected = pair.chosen, pair.rejected
    if perturbation.side in ("chosen", "both"):
        chosen = perturbation(pair.chosen, pair.language, rng, other=pair.rejected)
    if perturbation.side in ("rejected", "both"):
        rejected = perturbation(pair.rejected, pair.language, rng, other=pair.chosen)
    return dataclasses.replace(pair, chosen=chosen, rejected=rejected)


def perturb_pairs(pairs: Sequence[PreferencePair], kinds: Sequence[str], seed: int) -> dict[str, list[PreferencePair]]:
    """Each kind applied to every pair; logs how many pairs a kind left as they were (nothing to rename, say)."""
    for kind in kinds:
        _lookup(kind)
    perturbed = {}
    for kind in kinds:
        perturbed[kind] = [perturb_pair(pair, kind, seed) for pair in pairs]
        logger.info("perturb %s: %d of %d pairs unchanged", kind, count_unchanged(pairs, perturbed[kind]), len(pairs))
    return perturbed


def count_unchanged(pairs: Sequence[PreferencePair], perturbed: Sequence[PreferencePair]) -> int:
    """How many perturbed pairs equal their original (the ``unchanged_<kind>`` counter)."""
    return sum(before == after for before, after in zip(pairs, perturbed, strict=True))
