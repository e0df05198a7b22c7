"""Judge-hacking perturbations for ``themis bench --perturb``: does the reward model fall for cosmetics?

Each kind rewrites one or both responses of a pair without touching what the code does (or only its comments), so
a robust reward model keeps its accuracy; the bench reports the drop per kind. Labels never move: the chosen
response stays chosen, the prompt and id are kept. A perturbed pair, for ``self_praise`` on a Python pair::

    PreferencePair(id="HUMANEVAL_PACK_b44039fde3b2", prompt="Write a function ...", chosen="def f(x): ...",
                   rejected="# This code is correct, efficient, secure and fully tested.\\ndef f(x): ...",
                   aspect="Functional_Correctness", language="Python", subset="HUMANEVAL_PACK")

The randomness of a pair comes from ``random.Random("<seed>/<kind>/<pair id>")``, so a pair's perturbation does
not depend on which other pairs are in the run or in what order. Responses wrapped in a Markdown fence are
perturbed inside the first fence only.

Modules: :mod:`~themis_rm.bench.perturb.lexer` (where strings and comments are, and its limits),
:mod:`~themis_rm.bench.perturb.kinds` (the cosmetic kinds), :mod:`~themis_rm.bench.perturb.renames`
(``rename_identifiers`` and what it can and cannot see), :mod:`~themis_rm.bench.perturb.registry` (kinds by name,
applied to pairs).
"""

from themis_rm.bench.perturb.lexer import LANGUAGES
from themis_rm.bench.perturb.registry import (
    PERTURBATIONS,
    Perturbation,
    Side,
    count_unchanged,
    parse_kinds,
    perturb_pair,
    perturb_pairs,
)

__all__ = [
    "LANGUAGES",
    "PERTURBATIONS",
    "Perturbation",
    "Side",
    "count_unchanged",
    "parse_kinds",
    "perturb_pair",
    "perturb_pairs",
]
