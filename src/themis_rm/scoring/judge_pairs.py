"""A generative judge behind the same pair-scoring face as :class:`~themis_rm.scoring.Scorer`.

``themis bench --adapter judge --judge-url http://127.0.0.1:8000/v1 --model NAME`` scores each response
pointwise with an OpenAI-compatible endpoint (vLLM serves one). The criterion handed to the judge is the prompt
pack's text for the pair's aspect (or the chosen criteria); a failed parse or request gives NaN, which the
reference metrics count as wrong. Every raw answer is appended to ``judge_raw.jsonl`` in the run directory so
parses can be audited and re-run (:func:`~themis_rm.scoring.judge.reparse_raw`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from themis_rm.criteria import PromptPack
from themis_rm.pairs import PreferencePair, ScoreRequest
from themis_rm.scoring.judge import DEFAULT_CRITERION, GenerativeJudge, JudgeConfig
from themis_rm.scoring.scorer import ASPECT, PairScores


class JudgePairScorer:
    """Scores chosen and rejected of each pair with a generative judge, keeping raw outputs."""

    def __init__(self, config: JudgeConfig, prompts: PromptPack | None, raw_path: Path) -> None:
        self.judge = GenerativeJudge(config)
        self.config = config
        self.prompts = prompts
        self.raw_path = raw_path
        self.counters = {"parse_failures": 0, "out_of_range": 0, "request_failures": 0, "retries": 0}

    def criterion_text(self, criteria: str | Sequence[str] | None) -> str:
        """The pack's criterion texts for a spec, joined; the judge's default criterion without a pack."""
        if self.prompts is None or criteria is None or str(criteria).lower() == "none":
            return DEFAULT_CRITERION
        return "\n".join(self.prompts.components[key] for key in self.prompts.resolve(criteria))

    def score_pairs(
        self, pairs: Sequence[PreferencePair], criteria: str | Sequence[str] | None = ASPECT, progress=None
    ) -> PairScores:
        texts = [self.criterion_text(p.aspect if criteria == ASPECT else criteria) for p in pairs]
        requests = [ScoreRequest(p.prompt, p.chosen, t) for p, t in zip(pairs, texts, strict=True)]
        requests += [ScoreRequest(p.prompt, p.rejected, t) for p, t in zip(pairs, texts, strict=True)]
        out = self.judge.score_requests(requests)
        for name, value in out.counters.items():
            self.counters[name] += value
        self._append_raw(pairs, out)
        n = len(pairs)
        zeros = np.zeros(n, dtype=np.int64)
        return PairScores(out.rewards[:n], out.rewards[n:], zeros, zeros.copy())

    def _append_raw(self, pairs: Sequence[PreferencePair], out) -> None:
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        sides = [(p.id, "chosen") for p in pairs] + [(p.id, "rejected") for p in pairs]
        errors = out.errors or [None] * len(sides)
        with self.raw_path.open("a", encoding="utf-8") as handle:
            for (pair_id, side), raw, reward, error in zip(sides, out.raw_outputs, out.rewards, errors, strict=True):
                reward = None if math.isnan(reward) else float(reward)
                row = {"id": pair_id, "side": side, "raw": raw, "reward": reward, "error": error}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def settings(self, criteria=None) -> dict:
        return {
            "model": self.config.model,
            "adapter": "judge",
            "judge": {
                "base_url": self.config.base_url,
                "parser": self.config.parser,
                "temperature": self.config.temperature,
                "seed": self.config.seed,
                "max_tokens": self.config.max_tokens,
                "score_range": self.config.score_range,
            },
            "criteria": criteria,
            "prompt_pack": {"name": self.prompts.name, "sha256": self.prompts.sha256} if self.prompts else None,
        }

    def work_counters(self) -> dict:
        return dict(self.counters)
