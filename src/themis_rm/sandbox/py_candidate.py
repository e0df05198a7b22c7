"""The candidate side of a Python test run: load the program, then answer calls, one frame each.

Run as ``python -I py_candidate.py REQUESTS_FD RESPONSES_FD`` inside the sandbox. The program never sees a test:
it gets the arguments of one call at a time and its answer is a return value, encoded by :mod:`.codec` (plain
built-ins only). Its stdout and stderr go to /dev/null, so nothing it prints is read by anyone. Whatever it does
to this process (patching builtins, this module, the codec, or writing frames itself), it can only choose the
values the judge receives, and the judge, a process it never ran in, decides with them.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's directory out

import codec
import wire


def _describe(error: BaseException) -> dict:
    return {"type": type(error).__name__, "message": str(error)[:300]}


def main() -> None:
    requests, responses = int(sys.argv[1]), int(sys.argv[2])
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    setup = codec.loads(wire.receive(requests))
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(setup["program"], "<program>", "exec"), namespace)
    except BaseException as error:  # the program's own failure is an answer, not a crash of the harness
        wire.send(responses, codec.dumps({"loaded": False, "error": _describe(error)}))
        return
    names = sorted(name for name, value in namespace.items() if callable(value) and not name.startswith("__"))
    wire.send(responses, codec.dumps({"loaded": True, "callables": names}))
    while True:
        try:
            request = codec.loads(wire.receive(requests))
        except wire.WireClosed:
            return
        try:
            function = namespace[request["name"]]
            args = codec.decode(request["args"])
            kwargs = codec.decode(request["kwargs"])
            answer = {"value": codec.encode(function(*args, **kwargs))}
        except BaseException as error:
            answer = {"raised": _describe(error)}
        wire.send(responses, codec.dumps(answer))


if __name__ == "__main__":
    main()
