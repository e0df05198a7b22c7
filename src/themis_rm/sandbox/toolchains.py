"""How to build and run a program in each CodeRewardBench language, and which toolchains this machine has.

A :class:`Toolchain` is data: the source file name, the compile command (``None`` for interpreted languages),
the run command and the version probe, with ``{src}``/``{out}``/``{dir}``/``{mem}`` filled in per run. Both
steps run under the same supervisor (:mod:`.process`) as any candidate: a compiler fed a policy's source is
contained like the program it builds (``#include "/dev/zero"`` is a classic). :func:`available` says, once per
process, which languages can run here and why the others cannot; callers report it at start-up.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import PurePath

from themis_rm.sandbox.process import SandboxLimits


@dataclass(frozen=True)
class Toolchain:
    """One language's build-and-run recipe; commands are argv templates."""

    language: str
    source: str  # file name of the program inside the build directory
    run: tuple[str, ...]
    compile: tuple[str, ...] | None = None
    version: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # executables that must be on PATH
    reserve_mb: int = 0  # address space the runtime maps beyond the program's heap (JVM, V8), which its run caps
    threads: int = 0  # threads the runtime itself starts, added to the run's process cap

    def source_name(self, program: str) -> str:
        """The file name the source must have (Java: the public class's name)."""
        if self.language == "Java" and (match := re.search(r"public\s+(?:final\s+)?class\s+(\w+)", program)):
            return f"{match.group(1)}.java"
        return self.source

    def argv(self, template: tuple[str, ...], *, src: str, out: str, workdir: str, memory_mb: int) -> list[str]:
        fields = {"src": src, "out": out, "dir": workdir, "mem": str(memory_mb), "cls": PurePath(src).stem}
        return [part.format(**fields) for part in template]

    def widened(self, limits: SandboxLimits) -> SandboxLimits:
        """``limits`` widened for what the runtime itself needs (its threads, the address space it reserves at
        start); the program's own heap stays capped at ``memory_mb`` by the run command's heap flag."""
        if not (self.reserve_mb or self.threads):
            return limits
        return replace(limits, memory_mb=limits.memory_mb + self.reserve_mb, processes=limits.processes + self.threads)


JAVA_RUN = (
    "java",
    "-Xmx{mem}m",
    "-Xss64m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:CICompilerCount=1",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:MaxMetaspaceSize=128m",
    "-cp",
    "{dir}",
    "{cls}",
)
C_FLAGS = ("-O2", "-pipe", "-w")

TOOLCHAINS: dict[str, Toolchain] = {
    chain.language: chain
    for chain in (
        Toolchain("Python", "main.py", (sys.executable, "-I", "{src}"), version=(sys.executable, "--version")),
        Toolchain(
            "JavaScript",
            "main.js",
            ("node", "--max-old-space-size={mem}", "--stack-size=16000", "{src}"),
            version=("node", "--version"),
            needs=("node",),
            reserve_mb=1024,  # V8 maps about 750 MB before the first line runs
            threads=8,
        ),
        Toolchain(
            "C",
            "main.c",
            ("{out}",),
            compile=("gcc", *C_FLAGS, "-std=gnu17", "{src}", "-o", "{out}", "-lm"),
            version=("gcc", "--version"),
            needs=("gcc",),
        ),
        Toolchain(
            "Cpp",
            "main.cpp",
            ("{out}",),
            compile=("g++", *C_FLAGS, "-std=gnu++17", "{src}", "-o", "{out}"),
            version=("g++", "--version"),
            needs=("g++",),
        ),
        Toolchain(
            "Java",
            "Main.java",
            JAVA_RUN,
            compile=("javac", "-J-Xmx512m", "-J-XX:+UseSerialGC", "-encoding", "UTF-8", "-d", "{dir}", "{src}"),
            version=("javac", "-version"),
            needs=("javac", "java"),
            reserve_mb=3072,  # code cache, metaspace, class space and thread stacks
            threads=32,
        ),
        Toolchain(
            "Go",
            "main.go",
            ("{out}",),
            compile=("go", "build", "-o", "{out}", "{src}"),
            version=("go", "version"),
            needs=("go",),
            threads=16,
        ),
        Toolchain("Ruby", "main.rb", ("ruby", "{src}"), version=("ruby", "--version"), needs=("ruby",)),
        Toolchain(
            "CSharp",
            "main.cs",
            ("mono", "{out}"),
            compile=("mcs", "-optimize+", "-out:{out}", "{src}"),
            version=("mcs", "--version"),
            needs=("mcs", "mono"),
            threads=16,
        ),
    )
}


@dataclass(frozen=True)
class Availability:
    language: str
    ok: bool
    detail: str  # the version line, or what is missing

    def describe(self) -> str:
        return f"{self.language}: {self.detail}" if self.ok else f"{self.language}: unavailable ({self.detail})"


@functools.cache
def available() -> dict[str, Availability]:
    """Every language's toolchain on this machine: present and answering its version probe, or why not."""
    return {language: _probe(chain) for language, chain in TOOLCHAINS.items()}


def _probe(chain: Toolchain) -> Availability:
    missing = [tool for tool in chain.needs if shutil.which(tool) is None]
    if missing:
        return Availability(chain.language, False, f"{', '.join(missing)} not on PATH")
    try:
        done = subprocess.run(chain.version, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return Availability(chain.language, False, f"{' '.join(chain.version)}: {error}")
    if done.returncode != 0:
        return Availability(chain.language, False, f"{' '.join(chain.version)} exited {done.returncode}")
    first_line = (done.stdout or done.stderr).strip().splitlines()[:1]
    return Availability(chain.language, True, first_line[0] if first_line else "present")


def toolchain(language: str) -> Toolchain:
    """The toolchain for ``language``; raises ValueError naming the known languages, or why it cannot run here."""
    chain = TOOLCHAINS.get(language)
    if chain is None:
        raise ValueError(f"no toolchain for language {language!r}; known: {', '.join(TOOLCHAINS)}")
    found = available()[language]
    if not found.ok:
        raise ValueError(f"cannot run {language} here: {found.detail}")
    return chain


def describe_available() -> str:
    """One line for start-up logs: the languages that run here, then those that do not and why."""
    found = available().values()
    runs = ", ".join(a.language for a in found if a.ok) or "none"
    missing = "; ".join(f"{a.language} ({a.detail})" for a in found if not a.ok) or "none"
    return f"toolchains: {runs}; unavailable: {missing}"
