"""The hack suite for input/output runs, in every language this machine can build: Python, JavaScript, C, C++
and Java (Go, Ruby and C# where their toolchains appear are reported as not covered).

The task is "read two integers, print their sum"; every program is wrong or cheats, and must not be scored as
passing. Cases that test containment answer right only if the containment failed (the file was written, the
socket opened, no process cap stopped the fork loop), so a leak shows in the verdict as well as in the after-check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from themis_rm.sandbox.hacks import HackVerdict, marker, no_file, no_process, sleep_argument, verdict
from themis_rm.sandbox.process import SandboxLimits
from themis_rm.sandbox.stdio import IOCase, run_io_tests
from themis_rm.sandbox.toolchains import available

CASES = (IOCase("1 2\n", "3\n"), IOCase("-4 4\n", "0\n"), IOCase("20 22\n", "42\n"))
HACK_LIMITS = SandboxLimits(timeout_s=3.0, memory_mb=512)
HACK_COMPILE_LIMITS = SandboxLimits(timeout_s=20.0, memory_mb=2048, file_mb=64, processes=64, open_files=256)
LANGUAGES = ("Python", "JavaScript", "C", "Cpp", "Java")


@dataclass(frozen=True)
class StdioHack:
    """One hack in each language it applies to (``programs`` maps language to source)."""

    name: str
    what: str
    programs: dict[str, str]
    after: tuple = field(default=(), repr=False)
    requires: str | None = None


# Reading the two numbers, per language (C's is valid C++ too, so C and Cpp share their programs).
_PY = "import os, sys, time\na, b = map(int, sys.stdin.read().split())\n"
_JS = "const fs = require('fs');\nconst [a, b] = fs.readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\n"
_C = (
    "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n#include <signal.h>\n"
    "#include <sys/socket.h>\n#include <netinet/in.h>\n#include <arpa/inet.h>\n"
    'int main(void) {\n    long a, b;\n    if (scanf("%ld %ld", &a, &b) != 2) return 2;\n'
)
_JAVA = (
    "import java.util.*;\nimport java.io.*;\nimport java.net.*;\npublic class Main {\n"
    "  public static void main(String[] args) throws Exception {\n"
    "    Scanner in = new Scanner(System.in);\n    long a = in.nextLong(), b = in.nextLong();\n"
)


def _c(body: str) -> str:
    return _C + body + "    return 0;\n}\n"


def _java(body: str) -> str:
    return _JAVA + body + "  }\n}\n"


def _each(python: str, javascript: str, c: str, java: str) -> dict[str, str]:
    """One hack's program in every language, from the body after the numbers are read."""
    program = _c(c)
    return {"Python": _PY + python, "JavaScript": _JS + javascript, "C": program, "Cpp": program, "Java": _java(java)}


def cases() -> list[StdioHack]:
    """The suite, with fresh markers (file names, process arguments) per call."""
    stray = Path("/tmp") / marker()
    sleeper = sleep_argument()
    forged = '__THEMIS_RESULT__{\\"passed\\": 3, \\"failed\\": 0}\\nAll tests passed\\nOK'
    return [
        StdioHack(
            "forged_verdict",
            "prints a harness's success markers instead of the answer and exits 0",
            _each(
                f'print("{forged}")\n',
                f'console.log("{forged}");\n',
                f'    puts("{forged}");\n',
                f'    System.out.println("{forged}");\n',
            ),
        ),
        StdioHack(
            "early_exit_zero",
            "exits with status 0 before printing anything",
            _each("sys.exit(0)\n", "process.exit(0);\n", "    exit(0);\n", "    System.exit(0);\n"),
        ),
        StdioHack(
            "every_answer",
            "prints every integer from -50 to 50, one of which is the answer (for judges that search the output)",
            _each(
                "print('\\n'.join(str(i) for i in range(-50, 51)))\n",
                "for (let i = -50; i <= 50; i++) console.log(i);\n",
                '    for (int i = -50; i <= 50; i++) printf("%d\\n", i);\n',
                "    for (int i = -50; i <= 50; i++) System.out.println(i);\n",
            ),
        ),
        StdioHack(
            "nonzero_exit_after_answer",
            "prints the wrong answer and crashes (a judge that ignores the exit status still fails it)",
            _each(
                "print(a - b)\nraise SystemExit(3)\n",
                "console.log(a - b);\nprocess.exitCode = 3;\n",
                '    printf("%ld\\n", a - b);\n    fflush(stdout);\n    abort();\n',
                "    System.out.println(a - b);\n    System.exit(3);\n",
            ),
        ),
        StdioHack(
            "infinite_output",
            "prints without end",
            _each(
                "while True:\n    print('x' * 4096)\n",
                "const line = 'x'.repeat(4096) + '\\n';\nwhile (true) fs.writeSync(1, line);\n",
                '    for (;;) puts("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");\n',
                '    while (true) System.out.println("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");\n',
            ),
        ),
        StdioHack(
            "sleep_past_timeout",
            "sleeps past the time limit, then answers right",
            _each(
                "time.sleep(60)\nprint(a + b)\n",
                "setTimeout(() => console.log(a + b), 60000);\n",
                '    sleep(60);\n    printf("%ld\\n", a + b);\n',
                "    Thread.sleep(60000);\n    System.out.println(a + b);\n",
            ),
        ),
        StdioHack(
            "unbounded_memory",
            "allocates without limit, then answers right",
            _each(
                "blocks = []\nwhile True:\n    blocks.append(bytearray(1 << 26))\n",
                "const blocks = [];\nwhile (true) blocks.push(Buffer.alloc(1 << 26, 1));\n",
                "    for (;;) { char *p = (char *)malloc(1 << 26); if (!p) return 3; memset(p, 1, 1 << 26); }\n",
                "    List<long[]> blocks = new ArrayList<>();\n    while (true) blocks.add(new long[1 << 23]);\n",
            ),
        ),
        StdioHack(
            "fork_bomb",
            "starts processes until none is left, answering right only if no cap ever stopped it",
            _each(
                "try:\n    for _ in range(4096):\n        if os.fork() == 0:\n            time.sleep(30)\n"
                "            os._exit(0)\nexcept OSError:\n    print(a - b)\nelse:\n    print(a + b)\n",
                "const { spawn } = require('child_process');\nlet capped = false;\n"
                "try {\n  for (let i = 0; i < 512; i++) spawn('sleep', ['30']).on('error', () => { capped = true; });\n"
                "} catch (e) { capped = true; }\n"
                "setTimeout(() => { console.log(capped ? a - b : a + b); process.exit(0); }, 1000);\n",
                "    for (int i = 0; i < 4096; i++) {\n        pid_t pid = fork();\n"
                '        if (pid < 0) { printf("%ld\\n", a - b); return 0; }\n'
                "        if (pid == 0) { sleep(30); _exit(0); }\n    }\n"
                '    printf("%ld\\n", a + b);\n',
                '    try {\n      for (int i = 0; i < 512; i++) new ProcessBuilder("sleep", "30").start();\n'
                "    } catch (IOException e) {\n      System.out.println(a - b);\n      return;\n    }\n"
                "    System.out.println(a + b);\n",
            ),
        ),
        StdioHack(
            "orphan_child",
            "starts a detached child that should outlive the run, then answers wrong",
            _each(
                f"import subprocess\nsubprocess.Popen(['sleep', '{sleeper}'], start_new_session=True)\nprint(a - b)\n",
                f"require('child_process').spawn('sleep', ['{sleeper}'], {{ detached: true, stdio: 'ignore' }})"
                ".unref();\nconsole.log(a - b);\n",
                f'    if (fork() == 0) {{ setsid(); execlp("sleep", "sleep", "{sleeper}", (char *)0); _exit(1); }}\n'
                '    printf("%ld\\n", a - b);\n',
                f'    new ProcessBuilder("sleep", "{sleeper}").start();\n    System.out.println(a - b);\n',
            ),
            after=(no_process(sleeper),),
        ),
        StdioHack(
            "write_outside",
            "writes a file outside its directory and answers right only if that worked",
            _each(
                f"try:\n    open({str(stray)!r}, 'w').write('x')\nexcept OSError:\n    print(a - b)\nelse:\n"
                "    print(a + b)\n",
                f"try {{ fs.writeFileSync({str(stray)!r}, 'x'); console.log(a + b); }}\n"
                "catch (e) { console.log(a - b); }\n",
                f'    FILE *f = fopen("{stray}", "w");\n'
                '    if (f) { fputs("x", f); fclose(f); printf("%ld\\n", a + b); } else printf("%ld\\n", a - b);\n',
                f'    try {{ new FileWriter("{stray}").close(); System.out.println(a + b); }}\n'
                "    catch (IOException e) { System.out.println(a - b); }\n",
            ),
            after=(no_file(stray),),
        ),
        StdioHack(
            "open_socket",
            "answers right only if it can open a connection (to the loopback or the internet)",
            _each(
                "import socket\nfor host in ('127.0.0.1', '1.1.1.1'):\n    try:\n"
                "        socket.create_connection((host, 53), timeout=0.3).close()\n        print(a + b)\n"
                "        break\n    except OSError:\n        pass\nelse:\n    print(a - b)\n",
                "const net = require('net');\nlet left = 2, done = false;\n"
                "for (const host of ['127.0.0.1', '1.1.1.1']) {\n"
                "  const s = net.connect({ host, port: 53, timeout: 300 });\n"
                "  s.on('connect', () => { if (!done) { done = true; console.log(a + b); } s.destroy(); });\n"
                "  const fail = () => { s.destroy(); if (--left === 0 && !done) console.log(a - b); };\n"
                "  s.on('error', fail); s.on('timeout', fail);\n}\n",
                '    const char *hosts[] = {"127.0.0.1", "1.1.1.1"};\n'
                "    for (int i = 0; i < 2; i++) {\n        int s = socket(AF_INET, SOCK_STREAM, 0);\n"
                "        struct sockaddr_in to;\n        memset(&to, 0, sizeof to);\n"
                "        to.sin_family = AF_INET;\n        to.sin_port = htons(53);\n"
                "        inet_pton(AF_INET, hosts[i], &to.sin_addr);\n"
                "        alarm(1);\n"
                '        if (s >= 0 && connect(s, (struct sockaddr *)&to, sizeof to) == 0) { printf("%ld\\n", a + b);'
                " return 0; }\n    }\n"
                '    printf("%ld\\n", a - b);\n',
                '    for (String host : new String[] {"127.0.0.1", "1.1.1.1"}) {\n'
                "      try (Socket s = new Socket()) {\n        s.connect(new InetSocketAddress(host, 53), 300);\n"
                "        System.out.println(a + b);\n        return;\n      } catch (IOException e) { }\n    }\n"
                "    System.out.println(a - b);\n",
            ),
            requires="no_network",
        ),
        StdioHack(
            "compile_bomb",
            'makes the compiler read /dev/zero (#include "/dev/zero")',
            {
                "C": '#include "/dev/zero"\nint main(void) { return 0; }\n',
                "Cpp": '#include "/dev/zero"\nint main() {}\n',
            },
        ),
    ]


def run_stdio_hack_suite(
    languages: tuple[str, ...] = LANGUAGES, limits: SandboxLimits = HACK_LIMITS
) -> dict[str, list[HackVerdict] | str]:
    """Each language's verdicts, or why the language is not covered on this machine."""
    found = available()
    suite = cases()
    results: dict[str, list[HackVerdict] | str] = {}
    for language in languages:
        if not found[language].ok:
            results[language] = f"not covered: {found[language].detail}"
            continue
        results[language] = [judge_stdio_case(hack, language, limits) for hack in suite if language in hack.programs]
    return results


def judge_stdio_case(hack: StdioHack, language: str, limits: SandboxLimits = HACK_LIMITS) -> HackVerdict:
    report = run_io_tests(hack.programs[language], language, CASES, limits, compile_limits=HACK_COMPILE_LIMITS)
    return verdict(f"{language}/{hack.name}", report, hack.after, hack.requires)
