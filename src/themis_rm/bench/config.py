"""``BenchConfig`` and ``RerankConfig``: the settings of a ``themis bench``/``rerank`` run; each field is a flag and
a key of ``--config run.yaml``.

Kept apart from :mod:`themis_rm.bench.run` so the CLI, the checkpoint fingerprint and the robustness runner read
it without importing the run loop (and the run loop imports them without a cycle).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from themis_rm.config import setting
from themis_rm.errors import ThemisInputError
from themis_rm.pairs import SKIP_INVALID_HELP, FieldMap
from themis_rm.scoring.config import ASPECT, ModelConfig

TIE_POLICIES = ("wrong", "half")  # bench.metrics imports them from here
IDENTICAL_POLICIES = ("drop", "keep")


@dataclass(kw_only=True)
class BenchConfig(ModelConfig):
    """Benchmark config: data, selection, tie policy, checkpointing, judge sampling and perturbations."""

    data: str | None = setting(
        None,
        "Pairs: local file/directory or hub id (project-themis/Themis-CodeRewardBench with --data-config and "
        "--split Full).",
        required=True,
    )
    output: Path | None = setting(None, "Run directory (resumable).", required=True, flags=("-o",))
    criterion: str = setting(
        ASPECT,
        "Criterion prompt of each pair: aspect (each pair's own aspect, the paper's setting), full, none, or "
        "criteria names.",
        deprecated=("--prompts-mode", "--prompt-mode"),
    )
    ties: str = setting("wrong", "wrong (reference: ties count as errors) or half.", choices=TIE_POLICIES)
    identical: str = setting(
        "drop",
        "Pairs whose chosen and rejected reach the model as the same tokens (equal texts, or --max-length cut the "
        "difference): drop them from the results and count them, or keep them (scored as ties, as the reference).",
        choices=IDENTICAL_POLICIES,
    )
    limit: int | None = setting(None, "Score only the first N selected pairs.", ge=1)
    skip_invalid: bool = setting(False, SKIP_INVALID_HELP)
    steerability: bool = setting(
        False,
        "Also score every pair under each criterion prompt, Full and none: the aspect x prompt accuracy matrix and "
        "each criterion's diagonal advantage (diagnostics.json; needs a prompt pack).",
    )
    subsets: tuple[str, ...] = setting((), "Keep only these subsets (repeatable or comma list).", flags=("--subset",))
    languages: tuple[str, ...] = setting((), "Keep only these languages.", flags=("--language",))
    aspects: tuple[str, ...] = setting((), "Keep only these aspects.", flags=("--aspect",))
    split: str | None = setting(None, "Dataset split.")
    data_config: str | None = setting(None, "Configuration (subset name) of a hub dataset.")
    fields: FieldMap = setting(default_factory=FieldMap, flag_format="{name}-field")
    checkpoint_every: int = setting(256, "Pairs scored between two checkpoint writes.", ge=1)
    perturb: tuple[str, ...] = setting(
        (),
        "Judge-hacking perturbations to score too (comma list or 'all'): self_praise, fake_tests, "
        "rename_identifiers, whitespace, docstring_inflation, swap_comments.",
    )
    hack_suite: bool = setting(
        True,
        "With --perturb: also run the test sandbox's hack suites (every installed language) and record them in "
        "robustness.json and run.json.",
    )
    seed: int = setting(0, "Seed of the perturbations, the random null baseline and the bootstrap.")
    judge_temperature: float = setting(0.0, "--adapter judge: sampling temperature; 0 for reproducible scores.", ge=0)
    judge_seed: int | None = setting(0, "--adapter judge: the request's seed (vLLM honours it per request).")
    judge_max_tokens: int = setting(
        2048, "--adapter judge: generation cap; too low cuts the answer before its score.", ge=1
    )
    judge_score_range: str | None = setting(
        "1,10",
        "--adapter judge: valid scores 'LOW,HIGH' inclusive (e.g. '0,10' for a 0-10 judge), or 'none'; a score "
        "outside is NaN and counted.",
    )
    judge_retries: int = setting(
        3,
        "--adapter judge: retries of a request that got no answer (connection, timeout, 429, 5xx); still none "
        "after them fails the run, which the same command resumes.",
        ge=0,
    )
    judge_backoff_s: float = setting(1.0, "--adapter judge: wait before retry k is this times 2**k.", ge=0)
    judge_timeout_s: float = setting(300.0, "--adapter judge: per-request timeout in seconds.", gt=0)

    def problems(self) -> Iterator[str]:
        """Checks that need another module: perturbation kinds and the judge's score range."""
        from themis_rm.bench.perturb import parse_kinds
        from themis_rm.scoring.judge import parse_score_range

        checks = [lambda: parse_score_range(self.judge_score_range)]
        if self.perturb:
            checks.append(lambda: parse_kinds(",".join(self.perturb)))
        for check in checks:
            try:
                check()
            except ThemisInputError as exc:
                yield str(exc)


@dataclass(kw_only=True)
class RerankConfig(ModelConfig):
    """Rerank config: the questions, the criterion prompt and the Hits@K cut-offs."""

    data: str | None = setting(None, "Questions with completions and test results (rerank schema).", required=True)
    output: Path | None = setting(None, "Run directory.", required=True, flags=("-o",))
    criterion: str = setting("none", "Criteria for the system prompt (e.g. correctness), or none.")
    ks: tuple[int, ...] = setting((5, 10), "Hits@K cut-offs (repeatable or comma list).", flags=("--k",), gt=0)
    limit: int | None = setting(None, "Rerank only the first N questions.", ge=1)
    split: str | None = setting(None, "Dataset split.")
    data_config: str | None = setting(None, "Configuration (subset name) of a hub dataset.")
    prompt_field: str = setting("description", "Column of the question's prompt.")
