"""The LLM stages as datatrove steps: commit review, instruction synthesis or problem recovery, bug introduction,
and the pairwise judge with seeded A/B order, N votes and an explicit keep rule.

Each step sends a batch of records' requests concurrently (see :mod:`themis_rm.data.llm`), then keeps, edits or
drops each record with a counted reason. A request that gets no answer (after its retries) is counted
(``llm_request_failures``) and listed in ``<cache_dir>/failures/<step>.<rank>.jsonl``; by default the task then fails
at its end, after the records before it are written, so datatrove does not mark it complete and a rerun of the same
command redoes it: the cache answers every request that succeeded and only the failed ones are asked again
(``llm.fail_on_request_errors: false`` finishes instead, the records judged on the answers they got). Every random
choice (instruction style, solution order, A/B order of each
vote) is a hash of the seed and the record id, so a rerun, a resume or another worker count makes the same choices.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from themis_rm.criteria import CRITERIA
from themis_rm.data.base import CountingStep, DocumentsPipeline
from themis_rm.data.config import LLMConfig
from themis_rm.data.llm import ChatRequest, LLMClient, LLMRequestsFailed, RequestFailure
from themis_rm.data.prompts import (
    INSTRUCTION_STYLES,
    TemplateSet,
    aspect_context,
    fence_tag,
    parse_rating,
    parse_tag,
    parse_verdict,
    strip_fence,
)
from themis_rm.data.records import pair_input, stable_int

logger = logging.getLogger(__name__)


class LLMStep(CountingStep):
    """Batches records, asks the endpoint, and lets :meth:`apply` keep (return None) or drop (return a reason)."""

    type = "🤖 - LLM"

    def __init__(self, config: LLMConfig) -> None:
        super().__init__()
        self.config = config
        self._client: LLMClient | None = None
        self._templates: TemplateSet | None = None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._client = LLMClient(self.config.endpoint, self.config.cache_dir)
        self._templates = TemplateSet(self.config.templates_dir)
        batch: list = []
        for doc in data:
            batch.append(doc)
            if len(batch) == self.config.batch_size:
                yield from self._process(batch)
                batch = []
        if batch:
            yield from self._process(batch)
        self._report_failures(rank)

    def _report_failures(self, rank: int) -> None:
        """List this task's unanswered requests (or remove a stale list) and fail the task when configured to.

        Raises:
            LLMRequestsFailed: some requests failed and ``fail_on_request_errors`` is set.
        """
        failures = self._client.stats.failures
        path = self._failures_path(rank)
        if path is not None and not failures:
            path.unlink(missing_ok=True)
        if not failures:
            return
        if path is not None:
            _write_failures(path, failures)
        where = f"listed in {path}" if path else "no llm.cache_dir, so a rerun asks everything again"
        summary = f"{self.name} (task {rank}): {len(failures)} requests failed after their retries ({where})"
        summary += f"; first: {failures[0].error}"
        if not self.config.fail_on_request_errors:
            logger.warning("%s; their records were judged without them (llm.fail_on_request_errors is false)", summary)
            return
        raise LLMRequestsFailed(
            f"{summary}. The records before them are written and the answers that succeeded are cached: run the "
            "same command again to retry only the failed requests, or set llm.fail_on_request_errors: false to "
            "finish without them"
        )

    def _failures_path(self, rank: int) -> Path | None:
        if not self.config.cache_dir:
            return None
        return Path(self.config.cache_dir) / "failures" / f"{self.name}.{rank:05d}.jsonl"

    def _process(self, batch: list):
        plans = [self.requests(doc) for doc in batch]
        flat = [request for plan in plans for request in plan]
        before = vars(self._client.stats).copy()
        answers = self._client.complete_all(flat)
        for name in ("requests", "cache_hits", "retries", "request_failures"):
            if delta := getattr(self._client.stats, name) - before[name]:
                self.stat_update(f"llm_{name}", value=delta)
        start = 0
        for doc, plan in zip(batch, plans, strict=True):
            reason = self.apply(doc, answers[start : start + len(plan)])
            start += len(plan)
            self.count(reason or "forwarded")
            if reason is None:
                yield doc

    def render(self, name: str, **variables) -> str:
        return self._templates.render(name, **variables)

    def requests(self, doc) -> list[ChatRequest]:
        raise NotImplementedError

    def apply(self, doc, answers) -> str | None:
        raise NotImplementedError


def _code_context(doc) -> dict:
    meta = doc.metadata
    return {"language": meta.get("language"), "fence": fence_tag(meta.get("language")), "path": meta.get("path")}


class CommitReviewStep(LLMStep):
    """Rates each labelled aspect 1-5; keeps the aspects rated ``min_rating`` or more (``review`` in metadata)."""

    name = "llm_review"

    def requests(self, doc) -> list[ChatRequest]:
        meta = doc.metadata
        return [
            ChatRequest.user(
                self.render(
                    "commit_review",
                    **aspect_context(aspect),
                    **_code_context(doc),
                    repo=meta.get("repo"),
                    message=meta.get("message", ""),
                    diff=meta.get("diff", ""),
                )
            )
            for aspect in meta.get("aspects", [])
        ]

    def apply(self, doc, answers) -> str | None:
        review, kept = {}, []
        for aspect, answer in zip(doc.metadata.get("aspects", []), answers, strict=True):
            parsed = parse_rating(answer.text) if answer.error is None else None
            if parsed is None or parsed.value is None:
                self.stat_update("review_failures")
                review[aspect] = {"rating": None, "error": answer.error or "unparseable"}
                continue
            rating = int(parsed.value)
            review[aspect] = {"rating": rating, "parse": parsed.mode}
            if rating >= self.config.review.min_rating:
                kept.append(aspect)
        doc.metadata["review"] = review
        doc.metadata["aspects"] = kept
        if kept:
            return None
        return "review_rating" if any(r["rating"] is not None for r in review.values()) else "review_failed"


class InstructionStep(LLMStep):
    """Writes ``instruction``: synthesised in a seeded style, or recovered from the two versions in seeded order."""

    name = "llm_instruction"

    def requests(self, doc) -> list[ChatRequest]:
        meta, cfg = doc.metadata, self.config.instruction
        aspect = (meta.get("aspects") or [CRITERIA[0]])[0]
        if cfg.mode == "recovery":
            new_first = stable_int(f"recover:{self.config.endpoint.seed}:{doc.id}") % 2 == 0
            first, second = (doc.text, meta["old_contents"]) if new_first else (meta["old_contents"], doc.text)
            content = self.render("problem_recovery", **_code_context(doc), solution_1=first, solution_2=second)
            return [ChatRequest.user(content)]
        style = cfg.styles[stable_int(f"style:{self.config.endpoint.seed}:{doc.id}") % len(cfg.styles)]
        meta["instruction_style"] = style
        content = self.render(
            "instruction",
            **aspect_context(aspect),
            **_code_context(doc),
            message=meta.get("message", ""),
            old_code=meta["old_contents"],
            new_code=doc.text,
            style_description=INSTRUCTION_STYLES[style],
        )
        return [ChatRequest.user(content)]

    def apply(self, doc, answers) -> str | None:
        (answer,) = answers
        if answer.error is not None:
            return "instruction_request_failed"
        tag = "PROBLEM_STATEMENT" if self.config.instruction.mode == "recovery" else "INSTRUCTION"
        parsed = parse_tag(answer.text, tag)
        if not parsed.value:
            return "instruction_unparseable"
        doc.metadata["instruction"] = parsed.value
        return None


class BugIntroductionStep(LLMStep):
    """Adds ``buggy_code`` (a bug-introduced variant of the new version) to records with a configured aspect."""

    name = "llm_bug"

    def requests(self, doc) -> list[ChatRequest]:
        if not set(doc.metadata.get("aspects", [])) & set(self.config.bug.aspects):
            return []
        return [ChatRequest.user(self.render("bug_introduction", **_code_context(doc), code=doc.text))]

    def apply(self, doc, answers) -> str | None:
        if not answers:
            return None
        (answer,) = answers
        parsed = parse_tag(answer.text, "BUGGY_CODE") if answer.error is None else None
        code = strip_fence(parsed.value) if parsed and parsed.value else None
        if code is None or code.strip() == doc.text.strip():
            self.stat_update("bug_failures")
            return None  # the record stays; it just gets no extra pair
        doc.metadata["buggy_code"] = code
        explanation = parse_tag(answer.text, "BUG_EXPLANATION").value
        doc.metadata["bug_explanation"] = explanation
        return None


class PairwiseJudgeStep(LLMStep):
    """N votes per (record, aspect), each with its own seeded A/B order; keeps aspects that pass the keep rule."""

    name = "llm_judge"

    def _order(self, doc, aspect: str, vote: int) -> bool:
        """True when the new version (chosen) is shown as A in this vote."""
        return stable_int(f"ab:{self.config.endpoint.seed}:{doc.id}:{aspect}:{vote}") % 2 == 0

    def requests(self, doc) -> list[ChatRequest]:
        out = []
        for aspect in doc.metadata.get("aspects", []):
            for vote in range(self.config.judge.votes):
                chosen_a = self._order(doc, aspect, vote)
                a, b = (doc.text, doc.metadata["old_contents"])[:: 1 if chosen_a else -1]
                content = self.render(
                    "pairwise_judge",
                    **aspect_context(aspect),
                    **_code_context(doc),
                    prompt=pair_input(doc.metadata),
                    response_a=a,
                    response_b=b,
                )
                out.append(ChatRequest.user(content, seed_offset=vote))
        return out

    def apply(self, doc, answers) -> str | None:
        votes, rule = self.config.judge.votes, self.config.judge
        verdicts, kept = {}, []
        for k, aspect in enumerate(doc.metadata.get("aspects", [])):
            tally = {"matches": 0, "contradictions": 0, "ties": 0, "errors": 0, "parse": []}
            for vote, answer in enumerate(answers[k * votes : (k + 1) * votes]):
                parsed = parse_verdict(answer.text) if answer.error is None else None
                tally["parse"].append(parsed.mode if parsed else "request_failed")
                if parsed is None or parsed.value is None:
                    tally["errors"] += 1
                    self.stat_update("judge_parse_failures" if parsed else "judge_request_failures")
                elif parsed.value == "TIE":
                    tally["ties"] += 1
                else:
                    chosen_won = (parsed.value == "A") == self._order(doc, aspect, vote)
                    tally["matches" if chosen_won else "contradictions"] += 1
            verdicts[aspect] = tally
            if tally["matches"] >= rule.min_matches and tally["contradictions"] <= rule.max_contradictions:
                kept.append(aspect)
        doc.metadata["judge"] = verdicts
        doc.metadata["aspects"] = kept
        return None if kept else "judge_rejected"


def _write_failures(path: Path, failures: list[RequestFailure]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for failure in failures:
            handle.write(json.dumps(asdict(failure), ensure_ascii=False) + "\n")


def build_llm_steps(config: LLMConfig) -> list[LLMStep]:
    """The enabled LLM stages in pipeline order."""
    steps: list[LLMStep] = []
    if config.review.enabled:
        steps.append(CommitReviewStep(config))
    if config.instruction.enabled:
        steps.append(InstructionStep(config))
    if config.bug.enabled:
        steps.append(BugIntroductionStep(config))
    if config.judge.enabled:
        steps.append(PairwiseJudgeStep(config))
    return steps
