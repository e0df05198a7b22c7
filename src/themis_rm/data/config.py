"""``pipeline.yaml`` -> :class:`PipelineConfig`: every setting of the data stages, each said once with its help.

A section is the config of the stage that uses it (``filters.py``, ``dedup.py``... import theirs from here; mining
and the LLM endpoint keep theirs beside their code). Nothing here imports datatrove, so the CLI builds the ``data``
commands' options from these fields without the ``data`` extra. Loading is :func:`themis_rm.config.load_config`:
unknown keys, wrong types and invalid values are collected and raised once, each named by its YAML path
(``dedup.minhash.threshold must be < 1, got 1.5``); each section also checks itself when it is built. Relative paths
in the file are resolved against the file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from themis_rm.config import check_section, setting
from themis_rm.config import load_config as load_settings
from themis_rm.criteria import FUNCTIONAL_CORRECTNESS
from themis_rm.data.llm import EndpointConfig
from themis_rm.data.mine import MineConfig
from themis_rm.data.prompts import INSTRUCTION_STYLES
from themis_rm.errors import ThemisInputError
from themis_rm.scoring.config import PROMPT_PACK_HELP
from themis_rm.yamlfile import read_yaml_mapping

EXECUTORS = ("local", "slurm", "ray")
NEAR_FIELDS = ("diff", "new_contents", "old_contents")
# Keys (dotted paths) holding file paths, resolved against the config file's directory.
PATH_KEYS = (
    "output_dir",
    "mine.repos",
    "mine.repos_file",
    "mine.bigquery",
    "mine.clones_dir",
    "mine.extension_map",
    "filters.message.blocklist",
    "filters.repo_allowlist",
    "aspects.terms_dir",
    "llm.templates_dir",
    "llm.cache_dir",
    "assemble.decontam.benchmarks",
)
# Tokenizers may be hub ids: resolved only when the relative path exists beside the config file.
SOFT_PATH_KEYS = ("filters.token_length.tokenizer", "assemble.tokenizer")


# ------------------------------------------------------------------------------------------------ filters
@dataclass
class MessageRules:
    """Which commit messages carry enough signal to keep."""

    min_chars: int = setting(10, "Keep messages strictly longer than this (the reference SQL's 10 < LENGTH(message)).")
    max_chars: int = setting(15000, "Keep messages strictly shorter than this.")
    blocklist: str | None = setting(
        None, "Text file of low-signal subjects (exact lines, or 're:' regexes); None uses the package's own list."
    )


@dataclass
class TokenLimits:
    """Token counts of both file versions under a tokenizer (a local path or an id in the HF cache)."""

    tokenizer: str | None = setting(None, "Tokenizer counting both file versions; None skips the token filter.")
    min_tokens: int = setting(1, "Drop a record whose old or new file has fewer tokens (too_few_tokens).")
    max_tokens: int = setting(8192, "Drop a record whose old or new file has more tokens (too_many_tokens).")


@dataclass
class FilterConfig:
    """Which record filters run, in this order: message, repository, licence, token length, AST depth.

    The message rules run right after mining (in ``themis data mine`` too); the others only in ``themis data run``.
    """

    message: MessageRules = field(default_factory=MessageRules)
    repo_allowlist: list[str] = setting(
        default_factory=list, help="JSON files, each a list of owner/repo; empty keeps every repository."
    )
    license_allowlist: list[str] = setting(
        default_factory=list, help="Licence names (mit, apache-2.0...); empty keeps every licence."
    )
    drop_unknown_license: bool = setting(
        False, "With a licence allowlist, also drop records whose licence is unknown (else kept and counted)."
    )
    token_length: TokenLimits = field(default_factory=TokenLimits)
    min_ast_depth: int = setting(3, "Both versions must parse with tree-sitter and reach this depth; 0 disables it.")


# ------------------------------------------------------------------------------------------------ labels, dedup
@dataclass
class AspectConfig:
    """How commits get their aspect labels."""

    terms_dir: str | None = setting(
        None,
        "Directory of term lists (ours: <Criterion>.txt; or the authors' *_term_list.list); None: the built-in ones.",
    )
    match_on: str = setting(
        "message", "message (subject and body) or subject (first line only).", choices=("message", "subject")
    )
    require: bool = setting(
        True, "Drop records that match no aspect (dropped_no_aspect); false keeps them with an empty label list."
    )

    def __post_init__(self) -> None:
        check_section(self, "aspects")


@dataclass
class MinHashConfig:
    """Near-duplicate settings shared by the signature and cluster steps (and the benchmark)."""

    shingle_size: int = setting(20, "Words per shingle (the paper's 20; the reference script's default was 5).", ge=1)
    threshold: float = setting(0.75, "Jaccard similarity above which two records are near-duplicates.", gt=0, lt=1)
    num_perm: int = setting(256, "MinHash permutations; datasketch picks LSH bands and rows for the threshold.", ge=2)
    seed: int = setting(1, "Permutation seed; every task must use the same one.")
    field: str = setting(
        "diff",
        "Text compared: diff (the change itself: forks and cherry-picks collide, successive edits of one file do "
        "not), new_contents or old_contents.",
        choices=NEAR_FIELDS,
    )
    verify: bool = setting(True, "Confirm LSH candidates by their estimated Jaccard before merging (fewer false hits).")

    def __post_init__(self) -> None:
        check_section(self, "dedup.minhash")


@dataclass
class DedupConfig:
    """Which duplicates are removed."""

    exact: bool = setting(True, "Drop records whose old and new contents equal an earlier record's (exact_duplicate).")
    near: bool = setting(True, "Drop MinHash near-duplicates of an earlier record (near_duplicate).")
    minhash: MinHashConfig = field(default_factory=MinHashConfig)


# ------------------------------------------------------------------------------------------------ LLM stages
@dataclass
class ReviewConfig:
    """Commit review: an LLM rates how well the change serves each aspect it was labelled with."""

    enabled: bool = setting(False, "Run the commit-review stage.")
    min_rating: int = setting(
        4, "Keep an aspect rated at least this (1-5); the authors' threshold was not released.", ge=1, lt=6
    )


@dataclass
class InstructionConfig:
    """Instruction synthesis: the task a pair answers, written by an LLM."""

    enabled: bool = setting(False, "Run the instruction stage.")
    mode: str = setting(
        "synthesis",
        "synthesis (task written from the commit) or recovery (problem inferred from the two versions).",
        choices=("synthesis", "recovery"),
    )
    styles: list[str] = setting(
        default_factory=lambda: list(INSTRUCTION_STYLES),
        help="Instruction styles drawn from (seeded per record).",
        choices=tuple(INSTRUCTION_STYLES),
    )


@dataclass
class BugConfig:
    """Bug introduction: an extra Functional_Correctness pair against a buggy variant."""

    enabled: bool = setting(False, "Run the bug-introduction stage.")
    aspects: list[str] = setting(
        default_factory=lambda: [FUNCTIONAL_CORRECTNESS],
        help="Records with one of these aspects get a bug-introduced variant (an extra Functional_Correctness pair).",
    )


@dataclass
class PairwiseJudgeConfig:
    """The pairwise judge: N votes with seeded A/B order, and an explicit keep rule."""

    enabled: bool = setting(False, "Run the pairwise-judge stage.")
    votes: int = setting(8, "Judge calls per aspect, each with its own seed and A/B order.", ge=1)
    min_matches: int = setting(6, "Keep an aspect when at least this many votes prefer the new version ...", ge=0)
    max_contradictions: int = setting(
        0, "... and at most this many prefer the old one. Ties and unparseable votes count as neither.", ge=0
    )


@dataclass
class LLMConfig:
    """The endpoint and which LLM stages run (in this order: review, instruction, bug, judge)."""

    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    templates_dir: str | None = setting(None, "Directory of prompt templates replacing ours (same file names).")
    cache_dir: str | None = setting(None, "Answer cache; default <output_dir>/llm_cache.")
    batch_size: int = setting(64, "Records whose requests are sent together.", ge=1)
    fail_on_request_errors: bool = setting(
        True,
        "A task with requests still unanswered after their retries fails at its end (what succeeded is written and "
        "cached), so rerunning the same command retries only those. False: the task completes and those records are "
        "judged on the answers they got (counted); a rerun then skips the task and never retries them.",
    )
    review: ReviewConfig = field(default_factory=ReviewConfig)
    instruction: InstructionConfig = field(default_factory=InstructionConfig)
    bug: BugConfig = field(default_factory=BugConfig)
    judge: PairwiseJudgeConfig = field(default_factory=PairwiseJudgeConfig)

    def __post_init__(self) -> None:
        check_section(self, "llm")

    def problems(self) -> list[str]:
        """The checks that span fields (each field's own choices and bounds are declared with it)."""
        j = self.judge
        if j.min_matches > j.votes:
            return [f"llm.judge.min_matches ({j.min_matches}) must not exceed llm.judge.votes ({j.votes})"]
        return []

    @property
    def any_enabled(self) -> bool:
        return any(s.enabled for s in (self.review, self.instruction, self.bug, self.judge))


# ------------------------------------------------------------------------------------------------ assembly
@dataclass
class DecontamConfig:
    """Benchmarks to keep out of the training data."""

    benchmarks: list[str] = setting(
        default_factory=list,
        help="Files in any format themis bench reads (JSONL, JSON, Parquet, CSV); empty disables the check.",
    )
    ngram: int = setting(13, "Words per n-gram.", ge=1)
    fields: list[str] = setting(
        default_factory=lambda: ["prompt", "chosen", "rejected"],
        help="Benchmark columns indexed (a message list contributes every turn's content).",
    )

    def __post_init__(self) -> None:
        check_section(self, "assemble.decontam")


OVER_BUDGET_POLICIES = ("window", "drop")


@dataclass
class AssembleConfig:
    """How pairs are built and where they go."""

    prompt_pack: str | None = setting(None, PROMPT_PACK_HELP, deprecated=("--prompts",))
    seed: int = setting(0, "Seed of the system-prompt draw and of the split.")
    validation_fraction: float = setting(0.05, "Share of repositories held out for validation.", ge=0, lt=1)
    tokenizer: str | None = setting(
        None,
        "Tokenizer (local path or hub id) of the target model, whose chat template measures pairs; None turns the "
        "token budget off.",
    )
    max_tokens: int = setting(
        4096,
        "Token budget of a rendered conversation (system + input + response), chosen and rejected alike: the "
        "trainer's --max-length.",
        ge=1,
    )
    over_budget: str = setting(
        "window",
        "A pair over max_tokens: window (cut both versions to the same lines around the change, as much context as "
        "fits) or drop; either way counted.",
        choices=OVER_BUDGET_POLICIES,
    )
    bug_pairs: bool = setting(True, "Emit the Functional_Correctness pair against an introduced bug when there is one.")
    decontam: DecontamConfig = field(default_factory=DecontamConfig)

    def __post_init__(self) -> None:
        check_section(self, "assemble")


# ------------------------------------------------------------------------------------------------ the run
@dataclass
class ExecutorConfig:
    """Where the tasks run: datatrove's local, Slurm or Ray executor, with the same pipeline."""

    kind: str = setting("local", "Executor: local, slurm or ray.", choices=EXECUTORS)
    tasks: int = setting(
        1,
        "Shards of the work (repositories and records are dealt round-robin); fixed for the life of an output dir.",
        ge=1,
    )
    workers: int = setting(1, "Local executor: tasks run at once (-1: all).")
    options: dict[str, Any] = setting(
        default_factory=dict,
        help="Extra arguments of the executor: Slurm/Ray (partition, time, cpus_per_task, ...), local (start_method: "
        "forkserver by default, fork starts workers faster).",
        cli=False,
    )

    def __post_init__(self) -> None:
        check_section(self, "executor")

    def problems(self) -> list[str]:
        """``workers`` is a count or -1 (every task at once)."""
        return (
            []
            if self.workers >= 1 or self.workers == -1
            else [f"executor.workers must be >= 1 or -1, got {self.workers}"]
        )


@dataclass
class PipelineConfig:
    """Pipeline config: one ``themis data run`` (sources, filters, labels, dedup, LLM stages, assembly, executor)."""

    output_dir: str | None = setting(None, "Output directory: records, pairs, logs and run.json.", required=True)
    mine: MineConfig = field(default_factory=MineConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    aspects: AspectConfig = field(default_factory=AspectConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    assemble: AssembleConfig = field(default_factory=AssembleConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        check_section(self, "")


@dataclass
class MineRunConfig:
    """Mining run: one ``themis data mine``, the sources and message rules of ``data run`` without later stages."""

    output_dir: str = setting("mined", "Writes records/<task>.jsonl here.", flags=("-o",))
    mine: MineConfig = field(default_factory=MineConfig)
    message: MessageRules = setting(default_factory=MessageRules, flag_format="message-{name}")
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def pipeline(self) -> PipelineConfig:
        """The :class:`PipelineConfig` that ``run_mine`` reads (its other sections at their defaults)."""
        filters = FilterConfig(message=self.message)
        return PipelineConfig(self.output_dir, mine=self.mine, filters=filters, executor=self.executor)


# ------------------------------------------------------------------------------------------------ loading
def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a pipeline YAML; ``overrides`` maps dotted keys (``executor.workers``) to values set on top.

    Overrides are set into the YAML's mapping before relative paths are resolved, so they are read like the file.
    """
    path = Path(path)
    data = read_yaml_mapping(path, what="the pipeline YAML", where=str(path))
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    _resolve_paths(data, path.parent)
    return config_from_dict(data, str(path))


def config_from_dict(data: dict[str, Any], source: str = "config") -> PipelineConfig:
    """Build and validate a :class:`PipelineConfig`, collecting every problem before raising."""
    return load_settings(PipelineConfig, source, data=data)


def _set_dotted(data: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ThemisInputError(f"override {key}: {part} is not a section")
    node[last] = value


def _resolve_paths(data: dict, base: Path) -> None:
    for key in (*PATH_KEYS, *SOFT_PATH_KEYS):
        soft = key in SOFT_PATH_KEYS
        *parents, last = key.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get(last) is None:
            continue
        value = node[last]
        if isinstance(value, list):
            node[last] = [_resolve(v, base, soft) for v in value]
        else:
            node[last] = _resolve(value, base, soft)


def _resolve(value: Any, base: Path, soft: bool) -> Any:
    if not isinstance(value, str) or not value or "://" in value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute() or (soft and not (base / path).exists()):
        return str(path) if path.is_absolute() else value
    return str(base / path)
