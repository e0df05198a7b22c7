"""The test sandbox: run code a policy wrote, contained, with a verdict it cannot forge.

* :func:`run_tests` — a Python program against its test statements: the program in one sandbox, the tests in
  another, joined by a pipe that carries only call arguments and plain return values (:mod:`.python`);
* :func:`isolation` — what this machine allows (namespaces, read-only view, process cap), probed once;
* :mod:`.hacks` — the programs an RL policy writes to fool a test harness, each with the verdict it must get.

Every command runs under :mod:`.launcher` (rlimits, namespaces or a subreaper, the clock, no survivors).
"""

from themis_rm.sandbox.process import Isolation, SandboxLimits, isolation
from themis_rm.sandbox.python import TestReport, run_tests

__all__ = ["Isolation", "SandboxLimits", "TestReport", "isolation", "run_tests"]
