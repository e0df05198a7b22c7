"""Criteria and prompt packs: the one place that turns a choice of criteria into a system prompt.

A *selection* is a tuple of criterion keys: ``()`` means no system prompt, the five code criteria mean "Full".
A :class:`PromptPack` holds the base preamble and one text per criterion and renders both prompt styles:

* evaluation prompts (fixed strings, byte-exact with the published Themis evaluation map), and
* training prompts (``"\\n\\n"`` tails, criteria shuffled for the all-criteria branch), drawn by
  :class:`PromptSampler` with 15% none / 60% single / 25% all five by default.
"""

from __future__ import annotations

import hashlib
import json
import random
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from themis_rm.errors import CriteriaError, PromptPackError

FUNCTIONAL_CORRECTNESS = "Functional_Correctness"
RUNTIME_EFFICIENCY = "Runtime_Efficiency"
MEMORY_EFFICIENCY = "Memory_Efficiency"
SECURITY_HARDNESS = "Security_Hardness"
READABILITY_MAINTAINABILITY = "Readability_Maintainability"

CRITERIA: tuple[str, ...] = (
    FUNCTIONAL_CORRECTNESS,
    RUNTIME_EFFICIENCY,
    MEMORY_EFFICIENCY,
    SECURITY_HARDNESS,
    READABILITY_MAINTAINABILITY,
)
FULL = "Full"
NONE = "none"
# Order of the criteria in the published evaluation-time "Full" prompt; every multi-criteria eval prompt uses it.
FULL_EVAL_ORDER: tuple[str, ...] = (
    MEMORY_EFFICIENCY,
    FUNCTIONAL_CORRECTNESS,
    READABILITY_MAINTAINABILITY,
    RUNTIME_EFFICIENCY,
    SECURITY_HARDNESS,
)
# Aspects of general (non-code) preference data: trained with the base preamble only.
GENERAL_ASPECTS: frozenset[str] = frozenset({"Helpfulness", "Harmlessness"})

_ALIASES: dict[str, str] = {
    "fc": FUNCTIONAL_CORRECTNESS,
    "correctness": FUNCTIONAL_CORRECTNESS,
    "functional": FUNCTIONAL_CORRECTNESS,
    "re": RUNTIME_EFFICIENCY,
    "runtime": RUNTIME_EFFICIENCY,
    "efficiency": RUNTIME_EFFICIENCY,
    "me": MEMORY_EFFICIENCY,
    "memory": MEMORY_EFFICIENCY,
    "sh": SECURITY_HARDNESS,
    "security": SECURITY_HARDNESS,
    "rm": READABILITY_MAINTAINABILITY,
    "readability": READABILITY_MAINTAINABILITY,
    "maintainability": READABILITY_MAINTAINABILITY,
}


def builtin_aliases() -> dict[str, list[str]]:
    """Each built-in criterion's aliases (``Security_Hardness: [security, sh]``): known without any prompt pack."""
    return {key: sorted(a for a, target in _ALIASES.items() if target == key) for key in CRITERIA}


# Names resolve() treats specially; no criterion key or alias may take them.
_RESERVED_NAMES: frozenset[str] = frozenset({FULL.lower(), "all", NONE})

Selection = tuple[str, ...]


@dataclass(frozen=True)
class SamplingProbs:
    """Probabilities of the three training-time system-prompt treatments; they must sum to 1."""

    none: float = 0.15
    single: float = 0.60
    full: float = 0.25

    def __post_init__(self) -> None:
        values = (self.none, self.single, self.full)
        if any(p < 0 for p in values) or abs(sum(values) - 1.0) > 1e-9:
            raise PromptPackError(
                f"sampling probabilities must be >= 0 and sum to 1, got none={self.none}, "
                f"single={self.single}, full={self.full}"
            )


@dataclass(frozen=True)
class PromptPack:
    """Base preamble plus one text per criterion, rendered into evaluation and training prompts.

    Attributes:
        name: short label recorded in outputs (``themis-official@ddd7934``, ``open``, a file name).
        base: the preamble (helpfulness and harmlessness), without trailing newlines.
        components: criterion key -> criterion text (``"**Runtime Efficiency**: Does ..."``), official five first.
        sampling: training-time treatment probabilities.
        aliases: extra lower-case names for user-defined criteria.
    """

    name: str
    base: str
    components: Mapping[str, str]
    sampling: SamplingProbs = field(default_factory=SamplingProbs)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [key for key in CRITERIA if key not in self.components]
        if missing:
            raise PromptPackError(f"prompt pack {self.name!r} lacks criteria {missing}")

    @property
    def keys(self) -> tuple[str, ...]:
        """Every criterion key the pack knows: the five official ones, then user-defined ones."""
        return (*CRITERIA, *(key for key in self.components if key not in CRITERIA))

    @property
    def sha256(self) -> str:
        """Content hash recorded in run settings, so results name the exact prompts they used."""
        payload = {"base": self.base, "components": dict(self.components), "sampling": vars(self.sampling)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    # ----------------------------------------------------------------------------------------- selection
    def resolve(self, spec: str | Sequence[str] | None) -> Selection:
        """Parse a criteria spec (``"runtime"``, ``"security,runtime"``, ``"full"``, ``"none"``, a list, None).

        Names are case-insensitive and may be aliases. The result is in canonical order, so the same set of
        criteria always renders the same prompt.

        Raises:
            CriteriaError: for an unknown name; the message lists every valid one.
        """
        if spec is None:
            return ()
        names = [part.strip() for part in spec.split(",")] if isinstance(spec, str) else list(spec)
        chosen: set[str] = set()
        for name in names:
            if not name:
                continue
            lowered = name.lower()
            if lowered == NONE:
                continue
            if lowered in ("full", "all"):
                chosen.update(CRITERIA)
                continue
            key = self._lookup(lowered)
            if key is None:
                raise CriteriaError(f"unknown criterion {name!r}; valid names: {', '.join(self.valid_names())}")
            chosen.add(key)
        return self._canonical_order(chosen)

    def resolve_one(self, name: str) -> str:
        """The one criterion key ``name`` stands for (an aspect label); several or none is an error."""
        selection = self.resolve(name)
        if len(selection) != 1:
            raise CriteriaError(f"{name!r} must name exactly one criterion (an aspect), not {len(selection)}")
        return selection[0]

    def valid_names(self) -> list[str]:
        """Keys, aliases and the two special names, for error messages and ``themis criteria``."""
        return [*self.keys, FULL, NONE, *sorted({**_ALIASES, **self.aliases})]

    def _lookup(self, lowered: str) -> str | None:
        for key in self.keys:
            if key.lower() == lowered:
                return key
        return self.aliases.get(lowered) or _ALIASES.get(lowered)

    def _canonical_order(self, chosen: Iterable[str]) -> Selection:
        order = [*FULL_EVAL_ORDER, *(k for k in self.keys if k not in CRITERIA)]
        chosen = set(chosen)
        return tuple(key for key in order if key in chosen)

    # ------------------------------------------------------------------------------------------ rendering
    def eval_prompt(self, selection: Selection) -> str | None:
        """Evaluation-time system prompt: None for no criteria, the published strings for one criterion or Full.

        One criterion: ``base + "\\n\\n3. " + text`` (no trailing newline). Several: numbered from 3 in
        canonical order, joined by blank lines, ending with a single ``"\\n"`` (the published Full layout).
        """
        if not selection:
            return None
        if len(selection) == 1:
            return f"{self.base}\n\n3. {self.components[selection[0]]}"
        return f"{self.base}\n\n{self._numbered(selection)}\n"

    def training_prompt(self, selection: Selection) -> str:
        """Training-time system prompt for criteria in the given order (shuffled by the sampler).

        Ends with a blank line as in the training data; an empty selection gives the base preamble alone
        (used for general helpfulness/harmlessness preferences).
        """
        if not selection:
            return f"{self.base}\n\n"
        return f"{self.base}\n\n{self._numbered(selection)}\n\n"

    def _numbered(self, selection: Selection) -> str:
        return "\n\n".join(f"{i + 3}. {self.components[key]}" for i, key in enumerate(selection))

    def selection_label(self, selection: Selection) -> str:
        """Name of a selection in outputs: ``none``, ``Full``, one key, or keys joined by ``+``."""
        if not selection:
            return NONE
        if set(selection) == set(CRITERIA) and len(selection) == len(CRITERIA):
            return FULL
        return "+".join(selection)

    # ------------------------------------------------------------------------------------- construction
    def with_user_criteria(self, path: str | Path) -> PromptPack:
        """Return a pack extended with user-defined criteria from a TOML file.

        The file holds ``[[criteria]]`` tables, e.g.::

            [[criteria]]
            key = "Thread_Safety"
            title = "Thread Safety"
            text = "Does the response avoid data races? ..."
            aliases = ["threads"]
        """
        path = Path(path)
        taken = {**{key.lower(): key for key in self.keys}, **self.aliases}
        components, aliases = _parse_criteria_tables(path, _read_toml(path).get("criteria", []), taken)
        components = {**self.components, **components}
        aliases = {**self.aliases, **aliases}
        return replace(self, name=f"{self.name}+{path.stem}", components=components, aliases=aliases)


class PromptSampler:
    """Draws training-time system prompts: none / the example's own criterion / all five shuffled.

    Each draw depends only on ``(seed, epoch, index)``, so a dataset gets the same prompts whatever the order,
    worker count or resume point, and a new epoch re-samples them.
    """

    def __init__(self, pack: PromptPack, probs: SamplingProbs | None = None, seed: int = 0) -> None:
        self.pack = pack
        self.probs = probs or pack.sampling
        self.seed = seed

    def sample(self, aspect: str | None, index: int, epoch: int = 0) -> str | None:
        """System prompt for example ``index`` whose preference is about ``aspect`` (None = no prompt)."""
        rng = random.Random(f"themis:{self.seed}:{epoch}:{index}")
        u = rng.random()
        if u < self.probs.none:
            return None
        if u < self.probs.none + self.probs.single:
            return self.pack.training_prompt(self._aspect_selection(aspect))
        order = list(CRITERIA)
        rng.shuffle(order)
        return self.pack.training_prompt(tuple(order))

    def _aspect_selection(self, aspect: str | None) -> Selection:
        if aspect is None or aspect in GENERAL_ASPECTS:
            return ()
        selection = self.pack.resolve(aspect)
        if len(selection) != 1:
            raise CriteriaError(f"aspect {aspect!r} must name exactly one criterion")
        return selection


def pack_from_layout(data: Mapping, name: str) -> PromptPack:
    """Build a pack from the JSON layout of ``themis_system_prompts.json`` and verify its eval prompts.

    The layout has ``train_components`` (``base`` + one text per criterion), optionally ``train_sampling``
    (``none``/``single_criterion``/``full_shuffled``) and ``eval_prompts``. Every eval prompt present must equal
    what the pack renders, byte for byte; a mismatch means the pack would not reproduce the published setting.
    """
    try:
        components = dict(data["train_components"])
        base = components.pop("base")
    except (KeyError, TypeError) as exc:
        raise PromptPackError(f"{name}: expected a 'train_components' object with a 'base' entry") from exc
    sampling_data = data.get("train_sampling") or {}
    sampling = SamplingProbs(
        none=sampling_data.get("none", 0.15),
        single=sampling_data.get("single_criterion", 0.60),
        full=sampling_data.get("full_shuffled", 0.25),
    )
    pack = PromptPack(name=name, base=base, components=components, sampling=sampling)
    for key, expected in (data.get("eval_prompts") or {}).items():
        rendered = pack.eval_prompt(pack.resolve(key))
        if rendered != expected:
            got = rendered or ""
            at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
            at = min(len(got), len(expected)) if at is None else at
            raise PromptPackError(
                f"{name}: eval prompt {key!r} does not match the pack's rendering "
                f"(first difference at character {at}, lengths {len(got)} vs {len(expected)})"
            )
    return pack


def load_pack_json(path: str | Path) -> PromptPack:
    """Load a pack from a local JSON file in the ``themis_system_prompts.json`` layout."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PromptPackError(f"{path}: cannot read prompt pack JSON ({exc})") from exc
    return pack_from_layout(data, name=path.name)


def load_pack_toml(path: str | Path, name: str | None = None) -> PromptPack:
    """Load a complete pack from TOML: ``base = "..."`` plus ``[[criteria]]`` tables for all five keys."""
    path = Path(path)
    data = _read_toml(path)
    if not isinstance(data.get("base"), str):
        raise PromptPackError(f"{path}: 'base' must be a string (the preamble before the criteria)")
    components, aliases = _parse_criteria_tables(path, data.get("criteria", []))
    return PromptPack(name=name or path.stem, base=data["base"].strip(), components=components, aliases=aliases)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PromptPackError(f"{path}: cannot read TOML ({exc})") from exc


def _parse_criteria_tables(
    path: Path, tables: object, taken: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """``[[criteria]]`` tables -> (key -> ``"**Title**: text"``, alias -> key), every field checked.

    ``taken`` maps the lower-case names already in use (keys and aliases of the pack being extended) to their
    key. A new key or alias may not reuse one, nor ``full``/``all``/``none`` nor a built-in alias pointing
    elsewhere: it would silently shadow, or be shadowed by, an existing criterion.
    """
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise PromptPackError(f"{path}: 'criteria' must be an array of tables, written [[criteria]]")
    names = {**_ALIASES, **(taken or {})}
    components: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for i, table in enumerate(tables):
        for name in ("key", "title", "text"):
            if not _non_empty(table.get(name)):
                raise PromptPackError(f"{path}: criteria[{i}].{name} must be a non-empty string")
        key = table["key"]
        if key in components:
            raise PromptPackError(f"{path}: criteria[{i}].key {key!r} is defined twice")
        lowered = key.lower()
        if lowered in _RESERVED_NAMES or lowered in names:
            what = "reserved" if lowered in _RESERVED_NAMES else f"already defined ({names[lowered]!r})"
            raise PromptPackError(f"{path}: criteria[{i}].key {key!r} is {what}; choose another key")
        new_aliases = table.get("aliases", [])
        if not isinstance(new_aliases, list) or not all(_non_empty(a) for a in new_aliases):
            raise PromptPackError(f"{path}: criteria[{i}].aliases must be a list of non-empty strings")
        names[lowered] = key
        for alias in (a.strip().lower() for a in new_aliases):
            if alias in _RESERVED_NAMES or names.get(alias, key) != key:
                what = "is reserved" if alias in _RESERVED_NAMES else f"already names {names[alias]!r}"
                raise PromptPackError(f"{path}: criteria[{i}].aliases: {alias!r} {what}; pick another alias")
            names[alias] = key
            aliases[alias] = key
        components[key] = f"**{table['title']}**: {table['text'].strip()}"
    return components, aliases


def _non_empty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
