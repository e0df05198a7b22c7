"""Everything the sandbox promises on this machine, measured: isolation, toolchains and every hack suite.

One entry point for ``themis sandbox check`` and for ``themis bench --perturb`` (which records it beside the
robustness results): the function-call suites (Python and JavaScript programs under the Python judge) and the
input/output suite in every language whose toolchain is installed; languages without one are listed as not
covered, with the reason.
"""

from __future__ import annotations

from themis_rm.sandbox.hacks import SUITES, HackVerdict, run_hack_suite, summary
from themis_rm.sandbox.process import isolation
from themis_rm.sandbox.stdio_hacks import LANGUAGES, run_stdio_hack_suite
from themis_rm.sandbox.toolchains import available


def run_suites() -> dict[str, list[HackVerdict] | str]:
    """``{"calls/<language>" | "stdio/<language>": verdicts, or why the language is not covered}``."""
    found = available()
    suites: dict[str, list[HackVerdict] | str] = {}
    for language in SUITES:
        ok = found[language].ok
        suites[f"calls/{language}"] = run_hack_suite(language=language) if ok else _uncovered(found[language])
    for language, verdicts in run_stdio_hack_suite(LANGUAGES).items():
        suites[f"stdio/{language}"] = verdicts
    return suites


def _uncovered(availability) -> str:
    return f"not covered: {availability.detail}"


def machine_report(suites: dict[str, list[HackVerdict] | str] | None = None) -> dict:
    """JSON-ready: the isolation level, each toolchain, each suite's summary and the totals over all suites."""
    suites = run_suites() if suites is None else suites
    level = isolation()
    ran = {name: summary(verdicts) for name, verdicts in suites.items() if not isinstance(verdicts, str)}
    return {
        "isolation": {"mode": level.mode, **level.guarantees},
        "missing": level.missing,
        "toolchains": {name: {"ok": a.ok, "detail": a.detail} for name, a in available().items()},
        "cases": sum(s["cases"] for s in ran.values()),
        "held": sum(s["held"] for s in ran.values()),
        "suites": ran,
        "not_covered": {name: reason for name, reason in suites.items() if isinstance(reason, str)},
    }


def describe(report: dict) -> str:
    """One line: how many hacks held in how many suites, under which isolation."""
    mode, missing = report["isolation"]["mode"], ", ".join(report["missing"]) or "none"
    uncovered = ", ".join(report["not_covered"]) or "none"
    return (
        f"sandbox hack suite: {report['held']}/{report['cases']} held ({mode}; missing: {missing}; "
        f"languages not covered: {uncovered})"
    )
