"""Time or trace one program on given calls (run as ``python -I harness.py`` inside the sandbox).

Standard library only. Reads ``{"program", "entry_point", "calls", "mode", "inner"}`` on stdin, where ``calls``
are the sources of argument tuples; ``mode`` ``probe`` writes which calls the program answers without raising,
``time`` and ``memory`` write ``{"results": [repr per call], "seconds": best-of-inner total,
"peak_bytes": tracemalloc peak over the calls}`` on stdout, or ``{"error": ...}``. The programs are references
and our own rewrites of them, not a policy's output: they run in the sandbox for containment, not for a verdict.
"""

import ast
import hashlib
import json
import sys
import time
import tracemalloc


def _digest(value) -> str:
    """A result as the sha256 of its repr: scaled inputs give large results, compared, never read."""
    return hashlib.sha256(repr(value).encode()).hexdigest()


def main() -> None:
    job = json.loads(sys.stdin.read())
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(job["program"], "<program>", "exec"), namespace)
        function = namespace[job["entry_point"]]
        calls = [ast.literal_eval(source) for source in job["calls"]]
        if job["mode"] == "probe":  # which calls the program answers at all, and how long they take
            answered = []
            started = time.perf_counter()
            for args in calls:
                try:
                    function(*args)
                    answered.append(True)
                except Exception:
                    answered.append(False)
            out = {"answered": answered, "seconds": time.perf_counter() - started}
        elif job["mode"] == "memory":
            tracemalloc.start()
            results = []
            for args in calls:
                results.append(_digest(function(*args)))
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out = {"results": results, "peak_bytes": peak}
        else:
            best, values = float("inf"), []
            for _ in range(job["inner"]):
                started = time.perf_counter()
                values = [function(*args) for args in calls]
                best = min(best, time.perf_counter() - started)
            out = {"results": [_digest(value) for value in values], "seconds": best}
    except BaseException as error:  # the oracle records why a program could not be measured
        out = {"error": f"{type(error).__name__}: {error}"[:300]}
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
