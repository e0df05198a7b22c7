"""A generative judge behind the same pair-scoring face as :class:`~themis_rm.scoring.Scorer`.

``themis bench --adapter judge --judge-url http://127.0.0.1:8000/v1 --model NAME`` scores each response
pointwise with an OpenAI-compatible endpoint (vLLM serves one). The criterion handed to the judge is the prompt
pack's text for the pair's aspect (or the chosen criteria); a failed parse or request gives NaN, which the
reference metrics count as wrong. Every raw answer is appended to ``judge_raw.jsonl`` in the run directory so
parses can be audited; one line per answer, tagged with its variant (``clean`` or the perturbation kind)::

    {"variant": "clean", "id": "HUMANEVAL_PACK_b44039fd", "side": "chosen", "raw": "... \\\\boxed{7}",
     "reward": 7.0, "error": null}

A resumed bench run first cuts the file back to its checkpoint (:meth:`JudgePairScorer.keep_raw`), so each
checkpointed pair keeps exactly one answer per side and no answer is kept twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from themis_rm.criteria import PromptPack
from themis_rm.pairs import PreferencePair, ScoreRequest
from themis_rm.provenance import package_versions
from themis_rm.scoring.judge import (
    DEFAULT_CRITERION,
    GenerativeJudge,
    JudgeConfig,
    JudgeOutput,
    JudgeUnreachableError,
)
from themis_rm.scoring.scorer import ASPECT, PairScores, require_aspects

logger = logging.getLogger(__name__)

CLEAN = "clean"
# The judge settings that change a score; hashed into a bench checkpoint's fingerprint.
_FINGERPRINT_KEYS = ("parser", "temperature", "seed", "max_tokens", "score_range", "template_sha256")


class JudgePairScorer:
    """Scores chosen and rejected of each pair with a generative judge, keeping raw outputs."""

    def __init__(self, config: JudgeConfig, prompts: PromptPack | None, raw_path: Path) -> None:
        self.judge = GenerativeJudge(config)
        self.config = config
        self.prompts = prompts
        self.raw_path = raw_path
        self.counters = {
            "parse_failures": 0,
            "out_of_range": 0,
            "request_failures": 0,
            "unreachable": 0,
            "retries": 0,
            "raw_dropped_on_resume": 0,
        }

    def criterion_text(self, criteria: str | Sequence[str] | None) -> str:
        """The pack's criterion texts for a spec, joined; the judge's default criterion without a pack."""
        if self.prompts is None or criteria is None or str(criteria).lower() == "none":
            return DEFAULT_CRITERION
        return "\n".join(self.prompts.components[key] for key in self.prompts.resolve(criteria))

    def score_pairs(
        self,
        pairs: Sequence[PreferencePair],
        criteria: str | Sequence[str] | None = ASPECT,
        progress=None,
        *,
        variant: str = CLEAN,
    ) -> PairScores:
        """Judge both sides of every pair; ``variant`` tags the raw answers (``clean`` or a perturbation kind)."""
        if criteria == ASPECT:
            require_aspects(pairs)  # else a pair without an aspect would silently get the default criterion
        texts = [self.criterion_text(p.aspect if criteria == ASPECT else criteria) for p in pairs]
        requests = [ScoreRequest(p.prompt, p.chosen, t) for p, t in zip(pairs, texts, strict=True)]
        requests += [ScoreRequest(p.prompt, p.rejected, t) for p, t in zip(pairs, texts, strict=True)]
        out = self.judge.score_requests(requests)
        if out.unreachable:  # before anything is recorded: the chunk is judged again on resume
            raise JudgeUnreachableError(
                f"{out.unreachable} of {len(requests)} judge requests to {self.config.base_url} got no answer after "
                f"{self.config.retries} retries (first: {out.first_unreachable}). Nothing of this chunk was "
                "recorded; fix the endpoint and run the same command again to resume."
            )
        for name, value in out.counters.items():
            self.counters[name] += value
        self._append_raw(pairs, out, variant)
        n = len(pairs)
        zeros = np.zeros(n, dtype=np.int64)
        identical = np.array([p.chosen == p.rejected for p in pairs], dtype=bool)  # the judge sees the same text
        return PairScores(out.rewards[:n], out.rewards[n:], zeros, zeros.copy(), np.zeros(n, dtype=bool), identical)

    def score_variant(
        self, pairs: Sequence[PreferencePair], criteria: str | Sequence[str] | None, variant: str
    ) -> PairScores:
        """:meth:`score_pairs` with the raw answers tagged ``variant`` (they share ids with the clean pairs)."""
        return self.score_pairs(pairs, criteria, variant=variant)

    def keep_raw(self, checkpointed_ids: set[str]) -> int:
        """Cut ``judge_raw.jsonl`` back to the checkpoint before a resumed run appends to it.

        Keeps the clean answers of pairs already in ``scores.partial.jsonl`` (the last one per id and side).
        Drops the answers of pairs judged after the last checkpoint (they are judged again now), every perturbed
        answer (the robustness pass reruns whole) and a torn last line; a line without a variant predates the
        tag and counts as clean.

        Returns:
            The number of lines dropped (also added to the ``raw_dropped_on_resume`` counter).
        """
        if not self.raw_path.is_file():
            return 0
        kept: dict[tuple[str, str], str] = {}
        lines = self.raw_path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            record = _raw_record(line)
            if record is None or record.get("variant", CLEAN) != CLEAN or record.get("id") not in checkpointed_ids:
                continue
            kept[(record["id"], record.get("side"))] = line
        self.raw_path.write_text("".join(line + "\n" for line in kept.values()), encoding="utf-8")
        dropped = len(lines) - len(kept)
        self.counters["raw_dropped_on_resume"] += dropped
        if dropped:
            logger.info("resuming: dropped %d judge answers past the checkpoint from %s", dropped, self.raw_path)
        return dropped

    def _append_raw(self, pairs: Sequence[PreferencePair], out: JudgeOutput, variant: str) -> None:
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        sides = [(p.id, "chosen") for p in pairs] + [(p.id, "rejected") for p in pairs]
        errors = out.errors or [None] * len(sides)
        with self.raw_path.open("a", encoding="utf-8") as handle:
            for (pair_id, side), raw, reward, error in zip(sides, out.raw_outputs, out.rewards, errors, strict=True):
                reward = None if math.isnan(reward) else float(reward)
                row = {"variant": variant, "id": pair_id, "side": side, "raw": raw, "reward": reward, "error": error}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def settings(self, criteria=None) -> dict:
        """What produced these scores, in the keys of :meth:`Scorer.settings` where they apply."""
        config = self.config
        return {
            "model": config.model,
            "adapter": "judge",
            "engine": "judge",
            "judge": {
                "base_url": config.base_url,
                "parser": config.parser,
                "temperature": config.temperature,
                "seed": config.seed,
                "max_tokens": config.max_tokens,
                "score_range": list(config.score_range) if config.score_range is not None else None,
                "concurrency": config.concurrency,
                "retries": config.retries,
                "timeout_s": config.timeout_s,
                "template_sha256": hashlib.sha256(config.template.encode("utf-8")).hexdigest(),
            },
            "criteria": criteria,
            "prompt_pack": {"name": self.prompts.name, "sha256": self.prompts.sha256} if self.prompts else None,
            **package_versions(),
        }

    def resolved_settings(self) -> dict:
        """The sampling and parsing a score depends on (not the URL or concurrency), for a checkpoint's fingerprint."""
        judge = self.settings()["judge"]
        return {"judge": {key: judge[key] for key in _FINGERPRINT_KEYS}}

    def work_counters(self) -> dict:
        return dict(self.counters)


def _raw_record(line: str) -> dict | None:
    """One ``judge_raw.jsonl`` line as a dict; None for a torn or foreign line (dropped, and counted by the caller)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None
