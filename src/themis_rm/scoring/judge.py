"""Generative judges through any OpenAI-compatible endpoint (vLLM, SGLang, TGI, OpenAI): prompt -> text -> score.

A judge writes text and a parser turns it into a score. The reference's judge scripts each carried their own
parser; two of them turned a failed parse into a real 0.0 (cerm, lmunit), and one discarded the raw text and let
scores such as 562,754,405 through (r3). Here a failed parse is NaN and counted (the judge's fault, and part of
its accuracy), an out-of-range score likewise, and the raw text is kept (:meth:`JudgeOutput.save_raw`) so a parser
can be re-run with :func:`reparse_raw` without the model. A request that got no answer at all (connection refused,
timeout, auth, 5xx after the retries) is counted as ``unreachable``, which the bench turns into a failed,
resumable run (:class:`JudgeUnreachableError`) rather than "accuracy 0.00%".

    judge = GenerativeJudge(JudgeConfig(model="Qwen/Qwen3-8B", base_url="http://127.0.0.1:8000/v1"))
    out = judge.score_requests([ScoreRequest("Write f.", "def f(): pass")], criteria_text="Functional correctness")
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from themis_rm.errors import ThemisError, ThemisInputError
from themis_rm.llm_client import ChatCall, ChatClient, Endpoint, LLMTransportError, Sampling, endpoint_problems
from themis_rm.pairs import Prompt, ScoreRequest

logger = logging.getLogger(__name__)

DEFAULT_CRITERION = "Overall quality: functional correctness first, then efficiency, readability and security."
DEFAULT_TEMPLATE = (
    "You are an expert reviewer of code and technical answers. Read the user's prompt and the response below, "
    "then rate how well the response meets this criterion:\n\n"
    "{criterion}\n\n"
    "[PROMPT]\n{prompt}\n[/PROMPT]\n\n"
    "[RESPONSE]\n{response}\n[/RESPONSE]\n\n"
    "Explain your assessment in a few sentences. Then, on the last line, give a score from 1 (fails the criterion) "
    "to 10 (meets it fully) as \\boxed{{N}}."
)
TEMPLATE_FIELDS = ("prompt", "response", "criterion")


class JudgeUnreachableError(ThemisError):
    """Judge requests got no answer after their retries: the endpoint is down, refuses the key or keeps failing."""


# ------------------------------------------------------------------------------------------------- parsers
_SIGNED = r"[-+]?\d+(?:\.\d+)?"
_BOXED = re.compile(rf"\\boxed\{{\s*({_SIGNED})\s*\}}")
_JSON_SCORE = re.compile(rf"\{{[^{{}}]*?\"score\"\s*:\s*\"?({_SIGNED})\"?[^{{}}]*\}}")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

Parser = Callable[[str], float | None]


def _answer_part(text: str) -> str:
    """The text after the last ``</think>``: a reasoning model's drafts are not its answer."""
    return text.rsplit("</think>", 1)[-1]


def parse_boxed(text: str) -> float | None:
    """The last ``\\boxed{N}`` (integer or decimal), e.g. ``... so \\boxed{8.5}`` -> 8.5."""
    found = _BOXED.findall(_answer_part(text))
    return float(found[-1]) if found else None


def parse_json_score(text: str) -> float | None:
    """The last ``{"score": N}`` object anywhere in the text (other keys allowed, N may be quoted)."""
    found = _JSON_SCORE.findall(_answer_part(text))
    return float(found[-1]) if found else None


def parse_last_number(text: str) -> float | None:
    """The last unsigned number in the text; crude (``7/10`` reads 10), for judges told to end with the score."""
    found = _NUMBER.findall(_answer_part(text))
    return float(found[-1]) if found else None


PARSERS: dict[str, Parser] = {"boxed": parse_boxed, "json": parse_json_score, "last_number": parse_last_number}


# -------------------------------------------------------------------------------------------------- config
def parse_score_range(spec: str | None) -> tuple[float, float] | None:
    """``"LOW,HIGH"`` (inclusive, e.g. ``"0,10"``) -> ``(0.0, 10.0)``; ``"none"`` or None -> no range check.

    Zero is a valid bound: a 0-10 judge must keep its 0s instead of losing them to NaN as out of range.

    Raises:
        ThemisInputError: the spec is not two numbers with LOW <= HIGH.
    """
    if spec is None or spec.strip().lower() == "none":
        return None
    parts = [part.strip() for part in spec.split(",")]
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        low = high = math.nan
    if math.isnan(low) or math.isnan(high) or low > high:
        raise ThemisInputError(
            f"--judge-score-range must be 'LOW,HIGH' with LOW <= HIGH (e.g. '0,10') or 'none', got {spec!r}"
        )
    return (low, high)


@dataclass(frozen=True)
class JudgeConfig(Endpoint):
    """How to reach a judge model (the :class:`Endpoint` fields: model, URL, key, limits) and read its scores."""

    temperature: float = 0.0
    """Sampling temperature; 0 for reproducible scores."""
    seed: int | None = 0
    """Sent as the request's ``seed`` (vLLM honours it per request); None sends none."""
    max_tokens: int = 2048
    """Generation cap per answer; too low cuts the answer before its score (a parse failure)."""
    template: str = DEFAULT_TEMPLATE
    """User message as a ``str.format`` string over ``{prompt}``, ``{response}``, ``{criterion}``; literal braces
    are doubled (``{{"score": N}}``)."""
    parser: str = "boxed"
    """Name in :data:`PARSERS`: ``boxed``, ``json`` or ``last_number``."""
    score_range: tuple[float, float] | None = (1.0, 10.0)
    """Inclusive valid range (the default template's 1-10); a score outside is NaN and counted. None: no check."""

    def __post_init__(self) -> None:
        problems = endpoint_problems(self.concurrency, self.retries, self.backoff_s, self.timeout_s)
        if self.parser not in PARSERS:
            problems.append(f"parser must be one of {', '.join(PARSERS)}, got {self.parser!r}")
        if self.score_range is not None and not self.score_range[0] <= self.score_range[1]:
            problems.append(f"score_range must be (low, high) with low <= high, got {self.score_range}")
        problems += _template_problems(self.template)
        if problems:
            raise ThemisInputError("judge config: " + "; ".join(problems))

    def endpoint(self) -> Endpoint:
        """The shared chat client's view of this judge's endpoint (key, timeout, retries, concurrency)."""
        return Endpoint(**{f.name: getattr(self, f.name) for f in fields(Endpoint)})

    def sampling(self) -> Sampling:
        """Sampling sent with every judge request; the same seed each time, so a re-run asks the same question."""
        return Sampling(temperature=self.temperature, max_tokens=self.max_tokens, seed=self.seed)


def _template_problems(template: str) -> list[str]:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        return [f"template is not a valid format string ({exc}); double literal braces: {{{{ }}}}"]
    problems = []
    if unknown := sorted(names - set(TEMPLATE_FIELDS)):
        problems.append(f"template has unknown placeholder(s) {unknown}; use {{prompt}}, {{response}}, {{criterion}}")
    if "response" not in names:
        problems.append("template must contain {response}")
    return problems


# -------------------------------------------------------------------------------------------------- output
@dataclass(frozen=True)
class JudgeOutput:
    """Judge scores in input order: NaN where the request failed, the parse failed or the score was out of range."""

    rewards: np.ndarray
    raw_outputs: list[str]
    parse_failures: int
    out_of_range: int = 0
    request_failures: int = 0
    retries: int = 0
    errors: list[str | None] = field(default_factory=list)
    unreachable: int = 0
    """Of the request failures, those with no usable HTTP answer (the rest: a 200 without an answer in it)."""
    first_unreachable: str | None = None
    """The first of those errors, for the message that stops a run."""

    @property
    def counters(self) -> dict[str, int]:
        """Named counters for ``run.json``."""
        return {
            "parse_failures": self.parse_failures,
            "out_of_range": self.out_of_range,
            "request_failures": self.request_failures,
            "unreachable": self.unreachable,
            "retries": self.retries,
        }

    def save_raw(self, path: str | os.PathLike) -> Path:
        """Write one JSON line per request: ``{"index": 0, "raw": "...", "reward": 7.0, "error": null}``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        errors = self.errors or [None] * len(self.raw_outputs)
        with path.open("w", encoding="utf-8") as handle:
            for i, (raw, reward, error) in enumerate(zip(self.raw_outputs, self.rewards, errors, strict=True)):
                row = {"index": i, "raw": raw, "reward": None if math.isnan(reward) else float(reward), "error": error}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path


def parse_outputs(
    raw_outputs: Sequence[str],
    errors: Sequence[str | None],
    parser: str = "boxed",
    score_range: tuple[float, float] | None = (1.0, 10.0),
    retries: int = 0,
) -> JudgeOutput:
    """Parse raw judge texts into a :class:`JudgeOutput`; a failed request (``errors[i]`` set) stays NaN."""
    if parser not in PARSERS:
        raise ThemisInputError(f"parser must be one of {', '.join(PARSERS)}, got {parser!r}")
    rewards = np.full(len(raw_outputs), np.nan)
    parse_failures = out_of_range = 0
    for i, (raw, error) in enumerate(zip(raw_outputs, errors, strict=True)):
        if error is not None:
            continue
        score = PARSERS[parser](raw)
        if score is None:
            parse_failures += 1
        elif score_range is not None and not score_range[0] <= score <= score_range[1]:
            out_of_range += 1
        else:
            rewards[i] = score
    request_failures = sum(e is not None for e in errors)
    return JudgeOutput(
        rewards, list(raw_outputs), parse_failures, out_of_range, request_failures, retries, list(errors)
    )


def reparse_raw(
    path: str | os.PathLike, parser: str = "boxed", score_range: tuple[float, float] | None = (1.0, 10.0)
) -> JudgeOutput:
    """Re-run a parser over raw outputs saved by :meth:`JudgeOutput.save_raw` (no model calls)."""
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ThemisInputError(f"{path}:{line_no}: not a JSON line ({exc})") from exc
    rows.sort(key=lambda r: r["index"])
    return parse_outputs([r["raw"] for r in rows], [r.get("error") for r in rows], parser, score_range)


# --------------------------------------------------------------------------------------------------- judge
class GenerativeJudge:
    """Scores requests by asking a chat model through the shared :class:`~themis_rm.llm_client.ChatClient`.

    The client owns the transport (key, timeout, retries with backoff on 429/5xx/no answer, ``concurrency`` in
    flight); the judge owns the prompt and the parse. A request that got no answer scores NaN and is counted as a
    request failure (and as ``unreachable`` when no usable HTTP answer came back); its raw text is ``""``.

    Raises:
        MissingExtraError: ``openai`` is not installed (``themis-rm[judge]``).
    """

    def __init__(self, config: JudgeConfig) -> None:
        self._chat = ChatClient(config.endpoint(), extra="judge")
        self.config = config

    def build_messages(self, request: ScoreRequest, criteria_text: str | None = None) -> list[dict[str, str]]:
        """One user turn from the template; the criterion is ``criteria_text``, else the request's system prompt."""
        criterion = criteria_text or request.system or DEFAULT_CRITERION
        content = self.config.template.format(
            prompt=_prompt_text(request.prompt), response=request.response, criterion=criterion
        )
        return [{"role": "user", "content": content}]

    def score_requests(
        self,
        requests: Sequence[ScoreRequest],
        criteria_text: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> JudgeOutput:
        """Scores in input order; from async code, await :meth:`ascore_requests` instead."""
        return asyncio.run(self.ascore_requests(requests, criteria_text, progress))

    async def ascore_requests(
        self,
        requests: Sequence[ScoreRequest],
        criteria_text: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> JudgeOutput:
        """Async :meth:`score_requests`; ``progress(1)`` is called as each request finishes."""
        config = self.config
        sampling = config.sampling()
        calls = [ChatCall(tuple(self.build_messages(r, criteria_text)), sampling) for r in requests]
        done = await self._chat.acomplete_all(calls, progress)
        out = parse_outputs(
            [result.text or "" for result in done],
            [result.error_text for result in done],
            config.parser,
            config.score_range,
            retries=sum(result.retries for result in done),
        )
        unreachable = [r.error_text for r in done if isinstance(r.error, LLMTransportError)]
        if unreachable:
            out = replace(out, unreachable=len(unreachable), first_unreachable=unreachable[0])
        logger.info("judged %d responses with %s: %s", len(requests), config.model, out.counters)
        return out


def _prompt_text(prompt: Prompt) -> str:
    """A text prompt as is; a conversation as ``role: content`` turns separated by blank lines."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)
