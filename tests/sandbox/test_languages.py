"""The sandbox beyond Python: toolchains detected and reported, input/output runs in every installed language,
JavaScript programs under the Python judge, and the hack suites adapted per language."""

from __future__ import annotations

import pytest

from themis_rm.sandbox import run_tests
from themis_rm.sandbox.hacks import TESTS, js_cases, judge_case
from themis_rm.sandbox.process import SandboxLimits
from themis_rm.sandbox.stdio import IOCase, outputs_match, run_io_tests
from themis_rm.sandbox.stdio_hacks import CASES, LANGUAGES, cases, run_stdio_hack_suite
from themis_rm.sandbox.toolchains import TOOLCHAINS, available, describe_available, toolchain

ADD = {
    "Python": "a, b = map(int, input().split())\nprint(a + b)\n",
    "JavaScript": "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\n"
    "console.log(a + b);\n",
    "C": '#include <stdio.h>\nint main(void) { long a, b; scanf("%ld %ld", &a, &b); printf("%ld\\n", a + b); }\n',
    "Cpp": "#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n",
    "Java": "import java.util.*;\npublic class Solution {\n  public static void main(String[] args) {\n"
    "    Scanner in = new Scanner(System.in);\n    System.out.println(in.nextLong() + in.nextLong());\n  }\n}\n",
}


def _needs(language: str) -> None:
    if not available()[language].ok:
        pytest.skip(f"{language} toolchain not installed: {available()[language].detail}")


def test_every_benchmark_language_has_a_toolchain_entry_and_a_verdict_on_this_machine():
    assert set(TOOLCHAINS) == {"C", "CSharp", "Cpp", "Go", "Java", "JavaScript", "Python", "Ruby"}
    found = available()
    assert found["Python"].ok and "Python 3" in found["Python"].detail
    line = describe_available()
    for language, availability in found.items():
        assert language in line
        if not availability.ok:  # the reason, not a silent gap
            assert availability.detail and f"{language} ({availability.detail})" in line
            with pytest.raises(ValueError, match=f"cannot run {language} here"):
                toolchain(language)
    with pytest.raises(ValueError, match="no toolchain for language 'Cobol'; known: Python"):
        toolchain("Cobol")


@pytest.mark.parametrize("language", sorted(ADD))
def test_a_correct_program_passes_and_a_wrong_one_fails_with_the_case_named(language):
    _needs(language)
    report = run_io_tests(ADD[language], language, CASES)
    assert report.all_passed and report.passed == len(CASES), report
    wrong = {**CASES[1].__dict__, "output": "1\n"}  # a mapping with the CodeContests keys works too
    report = run_io_tests(ADD[language], language, [CASES[0], wrong])
    assert (report.passed, report.failed) == (1, 1)
    assert report.first_failure == {
        "case": 1,
        "input": "-4 4\n",
        "expected": "1\n",
        "got": "0\n",
        "error": "wrong output",
    }


@pytest.mark.parametrize("language", ["C", "Cpp", "Java"])
def test_a_build_failure_is_the_compiler_s_first_error(language):
    _needs(language)
    broken = ADD[language].replace(";", "", 1)
    report = run_io_tests(broken, language, CASES)
    assert report.passed == 0 and report.failed == len(CASES)
    assert report.error.startswith("compile: ") and "error" in report.error


def test_the_expected_output_never_reaches_the_program(tmp_path):
    """It stays in this process: a program that searches every sandbox directory, its own and every process's
    command line and environment for it finds nothing."""
    secret = "themis-expected-7f3a9c"
    search = (
        "import glob, os\nSECRET = SECRET[::-1]  # reversed in the source, which the search reads too\n"
        "paths = glob.glob('/proc/[0-9]*/cmdline') + glob.glob('/proc/[0-9]*/environ')\n"
        "for root in ('.', os.environ.get('HOME', '.'), '/dev/shm', *glob.glob('/tmp/themis-sandbox-*')):\n"
        "    for top, dirs, files in os.walk(root):\n"
        "        paths += [os.path.join(top, name) for name in files]\n"
        "found = []\n"
        "for path in paths:\n"
        "    try:\n"
        "        with open(path, 'rb') as f:\n"
        "            found += [path] if SECRET in f.read(1 << 20) else []\n"
        "    except OSError:\n"
        "        pass\n"
        "print(SECRET.decode() if found else 'nothing', found)\n"
    )
    program = f"SECRET = {secret[::-1].encode()!r}\n" + search
    report = run_io_tests(program, "Python", [IOCase("", secret + "\n")])
    assert report.failed == 1 and report.first_failure["got"].startswith("nothing"), report


def test_large_input_arrives_whole_and_the_build_directory_is_read_only_to_the_runs():
    numbers = " ".join(str(i) for i in range(200_000))
    program = (
        "import sys\nnums = sys.stdin.read().split()\n"
        "try:\n    open(__file__, 'a').write('\\nprint(\"tampered\")')\n    print('wrote')\n"
        "except OSError:\n    print(len(nums), sum(map(int, nums)))\n"
    )
    expected = f"200000 {sum(range(200_000))}\n"
    report = run_io_tests(program, "Python", [IOCase(numbers, expected), IOCase(numbers, expected)])
    assert report.all_passed, report


def test_outputs_compare_by_lines_tokens_or_exactly():
    assert outputs_match("3  \n\n\n", "3\n") and outputs_match("1\r\n2\n", "1\n2")
    assert not outputs_match("1 2\n", "1\n2\n") and outputs_match("1 2\n", "1\n2\n", "tokens")
    assert not outputs_match("3\n", "3", "exact") and outputs_match("3", "3", "exact")
    with pytest.raises(ValueError, match="compare must be one of"):
        outputs_match("", "", "fuzzy")
    with pytest.raises(ValueError, match=r"needs string fields \['output'\]"):
        IOCase.of({"input": "1", "expected": "2"})


def test_a_program_that_times_out_is_not_run_on_the_remaining_cases():
    report = run_io_tests("import time\ntime.sleep(30)\n", "Python", CASES, SandboxLimits(timeout_s=1.0))
    assert (report.passed, report.failed) == (0, len(CASES))
    assert report.error == "case 0: timed out after 1 s; the remaining cases were not run"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_stdio_hack_is_scored_as_a_failure_and_leaves_nothing(language):
    _needs(language)
    verdicts = run_stdio_hack_suite((language,))[language]
    expected = {hack.name for hack in cases() if language in hack.programs}
    assert {v.name for v in verdicts} == {f"{language}/{name}" for name in expected}
    for verdict in verdicts:
        assert verdict.held, (verdict.name, verdict.problems, verdict.report)
        assert not verdict.report.all_passed


def test_a_language_without_a_toolchain_is_reported_not_covered():
    missing = [language for language, found in available().items() if not found.ok]
    if not missing:
        pytest.skip("every toolchain is installed here")
    assert run_stdio_hack_suite((missing[0],)) == {missing[0]: f"not covered: {available()[missing[0]].detail}"}


JS_TESTS = [
    "assert candidate([1, 2]) == [[2, 4], {'a': 1.5, 'b': [True, None]}, 'é', 2**60, {1, 2}]",
    "assert candidate([0.1])[0] == [0.2]",
]
JS_TYPES = (
    "function f(xs) { return [xs.map((x) => x * 2), { a: 1.5, b: [true, null] }, 'é', 2 ** 60, new Set([1, 2])]; }"
)


def test_javascript_functions_run_under_the_python_judge_with_values_rebuilt_there():
    _needs("JavaScript")
    assert run_tests("function add(a, b) { return a + b; }", "add", TESTS, language="JavaScript").all_passed
    report = run_tests("function add(a, b) { return a - b; }", "add", TESTS, language="JavaScript")
    assert report.passed == 0 and report.first_failure["test"] == TESTS[0]
    exported = "module.exports = { add: (a, b) => helper(a) + b };\nfunction helper(x) { return x; }"
    assert run_tests(exported, "add", TESTS, language="JavaScript").all_passed
    assert run_tests(JS_TYPES, "f", JS_TESTS, language="JavaScript").all_passed
    report = run_tests("function add(a, b) {", "add", TESTS, language="JavaScript")
    assert report.error.startswith("program: SyntaxError")
    with pytest.raises(ValueError, match="not 'C'"):
        run_tests("int add(int a, int b);", "add", TESTS, language="C")


@pytest.mark.parametrize("name", [case.name for case in js_cases()])
def test_every_javascript_call_hack_is_scored_as_a_failure_and_leaves_nothing(name):
    _needs("JavaScript")
    case = next(c for c in js_cases() if c.name == name)
    verdict = judge_case(case, language="JavaScript")
    assert verdict.held, verdict.problems
    assert verdict.report.passed < len(TESTS)
