"""The sandbox runs untrusted code in a child process, bounded in time, memory and network, per test."""

from __future__ import annotations

import os

import pytest

from themis_rm.sandbox import SandboxLimits, run_tests


def test_each_test_statement_is_counted_separately():
    report = run_tests(
        "def f(x):\n    return x * 2\n",
        "f",
        ["assert candidate(1) == 2", "assert candidate(2) == 5", "assert candidate(0) == 0"],
    )
    assert (report.passed, report.failed) == (2, 1)
    assert report.first_failure["test"] == "assert candidate(2) == 5" and not report.all_passed


def test_infinite_loop_is_stopped_by_the_timeout():
    report = run_tests(
        "def f():\n    while True:\n        pass\n", "f", ["assert candidate()"], SandboxLimits(timeout_s=2, cpu_s=2)
    )
    assert report.error is not None and not report.all_passed


def test_memory_hog_is_killed_by_the_address_space_cap():
    report = run_tests(
        "def f():\n    return len(bytearray(2 << 30))\n", "f", ["assert candidate() > 0"], SandboxLimits(memory_mb=512)
    )
    assert report.failed == 1 and "MemoryError" in (report.first_failure or {}).get("error", "MemoryError")


def test_network_is_unreachable_from_the_sandbox():
    program = "import socket\ndef f():\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n    return True\n"
    report = run_tests(program, "f", ["assert candidate()"])
    assert report.failed == 1


def test_code_runs_in_a_child_process_inside_a_temporary_directory(tmp_path):
    marker = tmp_path / "parent-cwd-marker"
    program = "import os\ndef f():\n    open('written-here.txt', 'w').write('x')\n    return os.getpid(), os.getcwd()\n"
    tests = [f"assert candidate()[0] != {os.getpid()}", f"assert candidate()[1] != {str(tmp_path)!r}"]
    report = run_tests(program, "f", tests)
    assert report.all_passed
    assert not marker.exists() and not (tmp_path / "written-here.txt").exists()
    assert not os.path.exists("written-here.txt")


def test_program_that_does_not_even_load_reports_an_error():
    report = run_tests("def f(:\n", "f", ["assert candidate()"])
    assert report.error.startswith("program: SyntaxError") and not report.all_passed


def test_tests_call_the_programs_helpers_and_keep_their_own_preamble():
    # HumanEval/32 style: the tests call a helper the program defines (poly) and import what they need.
    program = "def poly(xs, x):\n    return sum(c * x**i for i, c in enumerate(xs))\ndef root(xs):\n    return 1.0\n"
    tests = ["assert math.isclose(poly([-1, 1], candidate([-1, 1])), 0.0)", "assert candidate([1]) == LIMIT"]
    report = run_tests(program, "root", tests, preamble="import math\nLIMIT = 1.0")
    assert report.all_passed, report


def test_a_builtin_exception_reaches_tests_that_expect_it():
    program = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    tests = ["try:\n    candidate(-1)\n    raise AssertionError('no error')\nexcept ValueError:\n    pass"]
    assert run_tests(program, "f", tests).all_passed


def test_values_cross_exactly_floats_bytes_sets_and_nested_containers():
    program = "def f():\n    return [0.1 + 0.2, float('inf'), b'\\x00', {1, 2}, {'k': (1, None)}, 2**100, 1+2j]\n"
    tests = [
        "assert candidate() == [0.30000000000000004, float('inf'), b'\\x00', {1, 2}, {'k': (1, None)}, 2**100, 1+2j]"
    ]
    assert run_tests(program, "f", tests).all_passed


def test_codec_refuses_subclasses_and_frames_that_are_not_plain_values():
    from themis_rm.sandbox.codec import CodecError, decode, encode

    class Loose(int):
        pass

    value = [1, 2.5, "s", b"b", (None, True), {3: {4}}, frozenset({5}), -0.0, float("nan")]
    round_trip = decode(encode(value))
    assert round_trip[:8] == value[:8] and round_trip[8] != round_trip[8]  # NaN stays NaN
    for bad in (Loose(1), [Loose(2)], object(), {"k": lambda: 0}):
        with pytest.raises(CodecError):
            encode(bad)
    for frame in ({"int": 3}, {"object": "x"}, {"list": "abc"}, [1], 1.5, {"int": "1", "float": "0x1p0"}):
        with pytest.raises(CodecError):
            decode(frame)


def test_peak_memory_is_the_programs_own_not_the_supervisors():
    """ru_maxrss of a process forked from the Python supervisor never drops below the supervisor's resident size;
    a memory cgroup per run (where the machine has one) measures the program alone."""
    from themis_rm.sandbox.process import memory_cgroup
    from themis_rm.sandbox.stdio import run_io_tests

    case = [{"input": "", "output": "hi\n"}]
    tiny = run_io_tests('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n', "C", case)
    large = run_io_tests(
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
        'int main(void) { char *p = malloc(32 << 20); memset(p, 1, 32 << 20); puts("hi"); return p[7] - 1; }\n',
        "C",
        case,
    )
    assert tiny.all_passed and large.all_passed
    assert large.peak_memory_mb - tiny.peak_memory_mb > 24  # the 32 MiB it touched, whatever the floor
    group = memory_cgroup()
    if group is not None:  # this machine measures by cgroup: a C program that prints a line needs ~2 MB, not ~9
        group.rmdir()
        assert tiny.peak_memory_mb < 5
