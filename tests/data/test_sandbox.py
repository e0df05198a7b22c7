"""The sandbox runs untrusted code in a child process, bounded in time, memory and network, per test."""

from __future__ import annotations

import os

from themis_rm.data.sandbox import SandboxLimits, run_tests


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
