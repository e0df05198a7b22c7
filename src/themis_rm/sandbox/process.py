"""Start commands under the sandbox supervisor (:mod:`.launcher`) and collect what they leave: status, capped
output, files written outside their directory.

:func:`isolation` probes once per process what this machine allows (user/PID/network/mount namespaces, dropping
to ``nobody``) and says which guarantees hold and which are missing; every run uses the strongest mode the probe
found. Nothing here executes candidate code in this process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from themis_rm.config import setting

logger = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("launcher.py")
NOBODY = 65534
BACKSTOP_S = 5.0  # the supervisor owns the clock; this only catches a supervisor that itself hangs
OUTPUT_CAP = 1 << 20
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


@dataclass(frozen=True)
class SandboxLimits:
    """Caps on one run; the defaults suit HumanEval-sized problems."""

    timeout_s: float = setting(10.0, "Wall-clock limit per test run.", gt=0)
    memory_mb: int = setting(1024, "Address-space cap per test run.", ge=1)
    cpu_s: int | None = setting(None, "CPU-time cap per test run; default: the wall-clock limit + 1 s.", ge=1)
    file_mb: int = setting(16, "Largest file a test run may write.", ge=1)
    processes: int = setting(32, "Most processes (and threads) a test run may have at once.", ge=1)
    open_files: int = setting(64, "Most open files per process of a test run.", ge=8)

    @property
    def cpu_limit_s(self) -> int:
        """``cpu_s``, or the whole seconds of ``timeout_s`` plus one: a busy loop ends by the clock, not by CPU."""
        return self.cpu_s if self.cpu_s is not None else int(self.timeout_s) + 1

    def rlimits(self) -> dict[str, int]:
        """Every cap but processes, which depends on the uid (:func:`_rlimits`)."""
        return {
            "as": self.memory_mb << 20,
            "cpu": self.cpu_limit_s,
            "fsize": self.file_mb << 20,
            "nofile": self.open_files,
            "core": 0,
        }


@dataclass(frozen=True)
class Isolation:
    """What the sandbox guarantees on this machine, found by running a probe command under each mode."""

    mode: str  # "namespaces" or "fallback"
    outside_uid: int | None  # the uid the command runs as, seen from outside
    guarantees: dict[str, bool] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [name for name, held in self.guarantees.items() if not held]

    def describe(self) -> str:
        held = ", ".join(name for name, ok in self.guarantees.items() if ok) or "none"
        missing = ", ".join(self.missing) or "none"
        return f"sandbox isolation: {self.mode} (holds: {held}; missing: {missing})"


GUARANTEE_NAMES = {
    "separate_pids": "a PID namespace: the command sees only its own processes, and all die with it",
    "no_network": "a network namespace with only a down loopback",
    "read_only_fs": "every filesystem read-only except the run's own directory",
    "unprivileged": "the command runs as an unprivileged user (not root, not our own uid when we are root)",
    "process_cap": "RLIMIT_NPROC binds (a fork bomb stops at the cap)",
    "survivors_killed": "every process the command started is killed at the end",
}


@dataclass(frozen=True)
class Outcome:
    """How a sandboxed command ended, and what it left."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    setup_error: str | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    output_truncated: bool = False
    stray_files: tuple[str, ...] = ()
    cpu_s: float | None = None  # the command's user + system CPU, from the kernel (None when it was killed)
    max_rss_kb: int | None = None  # its peak resident memory


class Running:
    """A command started under the supervisor; :meth:`finish` waits for it and cleans up."""

    def __init__(
        self,
        process: subprocess.Popen,
        status_r: int,
        snapshot: dict | None,
        uid: int,
        group: Path | None,
        memory: Path | None = None,
    ) -> None:
        self.process, self._status_r, self._snapshot, self._uid, self._group = process, status_r, snapshot, uid, group
        self._memory = memory

    def finish(self, timeout_s: float, *, output_cap: int = OUTPUT_CAP) -> Outcome:
        stdout, stderr, truncated = _drain(self.process, time.monotonic() + timeout_s + BACKSTOP_S, output_cap)
        try:
            self.process.wait(timeout=BACKSTOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        status = _read_status(self._status_r)
        # Whatever is left is usually the namespace's own teardown, still under way.
        if self._group is not None and (survivors := remove_cgroup(self._group)):
            logger.debug("sandbox: killed %d processes left in %s", survivors, self._group)
        peak_kb = status.get("max_rss_kb")
        if self._memory is not None:
            peak_kb = _memory_peak_kb(self._memory, peak_kb)
            remove_cgroup(self._memory)
        strays = _stray_files(self._snapshot, self._uid) if self._snapshot is not None else ()
        return Outcome(
            exit_code=status.get("exit"),
            signal=status.get("signal"),
            timed_out=bool(status.get("timed_out")),
            setup_error=status.get("setup_error"),
            stdout=stdout,
            stderr=stderr,
            output_truncated=truncated,
            stray_files=strays,
            cpu_s=status.get("cpu_s"),
            max_rss_kb=peak_kb,
        )


def contained_notes(outcome: Outcome, side: str) -> tuple[str, ...]:
    """What the sandbox stopped or cleaned up in one run, for the report; removes the stray files it names."""
    notes = []
    if outcome.timed_out:
        notes.append(f"{side}: killed at the time limit")
    if outcome.output_truncated:
        notes.append(f"{side}: output cut at the cap")
    for path in outcome.stray_files:  # new since the run started and owned by the command's uid: its own
        notes.append(f"{side}: removed {path}, written outside its directory")
        _remove(path)
    return tuple(notes)


def _remove(path: str) -> None:
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


def describe_end(outcome: Outcome, timeout_s: float) -> str:
    """How a run ended, in words: timed out, killed by a signal, or its exit status."""
    if outcome.timed_out:
        return f"timed out after {timeout_s:g} s"
    if outcome.signal:
        return f"killed by signal {outcome.signal}"
    return f"exit status {outcome.exit_code}"


def start(
    argv: list[str],
    *,
    workdir: Path,
    limits: SandboxLimits,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
    keep_fds: tuple[int, ...] = (),
    env: dict[str, str] | None = None,
    timeout_s: float | None = None,
    level: Isolation | None = None,
) -> Running:
    """Start ``argv`` contained in ``workdir`` (which it alone may write) under ``level`` (default: the strongest
    isolation this machine gives, :func:`isolation`)."""
    level = level or isolation()
    status_r, status_w = os.pipe()
    config = {
        "mode": level.mode,
        "argv": [shutil.which(argv[0]) or argv[0], *argv[1:]],
        "cwd": str(workdir),
        "env": env if env is not None else default_env(workdir),
        "limits": _rlimits(limits, level),
        "timeout_s": timeout_s if timeout_s is not None else limits.timeout_s,
        "keep_fds": list(keep_fds),
        "status_fd": status_w,
        "no_network": True,
        "read_only": True,
        "drop_root": level.outside_uid == NOBODY,
        "outside_ids": [level.outside_uid, level.outside_uid] if level.outside_uid is not None else [0, 0],
        "cgroup": str(group) if (group := pids_cgroup(limits.processes)) else None,
        "memory_cgroup": str(memory) if (memory := memory_cgroup()) else None,
    }
    if level.outside_uid not in (None, os.getuid()):
        os.chown(workdir, level.outside_uid, level.outside_uid)
    snapshot = None if level.guarantees.get("read_only_fs") else _snapshot()
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config)],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(status_w, *keep_fds),
            start_new_session=True,
            cwd=workdir,
            env={},
        )
    finally:
        os.close(status_w)
    uid = level.outside_uid if level.outside_uid is not None else os.getuid()
    return Running(process, status_r, snapshot, uid, group, memory)


def _rlimits(limits: SandboxLimits, level: Isolation) -> dict[str, int]:
    """The run's rlimits. ``RLIMIT_NPROC`` counts every process of the uid: in a user namespace that is the run's
    own; sharing our uid (fallback, not root) the cap is added to what the uid already runs; as root it does not
    bind at all (the pids cgroup is the cap there)."""
    values = limits.rlimits()
    uid = level.outside_uid if level.outside_uid is not None else os.getuid()
    if uid == 0:
        return values
    shared = level.mode == "fallback" and uid == os.getuid()
    return {**values, "nproc": limits.processes + (_processes_of(uid) if shared else 0)}


def _processes_of(uid: int) -> int:
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}").st_uid == uid:
                count += len(os.listdir(f"/proc/{pid}/task"))  # threads count against RLIMIT_NPROC too
    return count


def default_env(workdir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _drain(process: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, bytes, bool]:
    """Read stdout and stderr until both close or the backstop passes, keeping at most ``cap`` bytes of each;
    past the cap the pipe is closed (the writer gets EPIPE) and the output marked truncated."""
    pipes = {s.fileno(): (name, s) for name in ("stdout", "stderr") if (s := getattr(process, name)) is not None}
    buffers = {name: bytearray() for name, _ in pipes.values()}
    truncated = False
    with selectors.DefaultSelector() as selector:
        for fd in pipes:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and (remaining := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(remaining):
                name, stream = pipes[key.fd]
                chunk = os.read(key.fd, 65536)
                room = cap - len(buffers[name])
                buffers[name] += chunk[:room]
                if chunk and len(chunk) <= room:
                    continue
                truncated = truncated or len(chunk) > room
                selector.unregister(key.fd)
                stream.close()
    for _, stream in pipes.values():
        stream.close()
    return bytes(buffers.get("stdout", b"")), bytes(buffers.get("stderr", b"")), truncated


def _read_status(status_r: int) -> dict:
    data = b""
    try:
        while chunk := os.read(status_r, 65536):
            data += chunk
    finally:
        os.close(status_r)
    if not data:
        return {"setup_error": "the sandbox supervisor died without a status"}
    return json.loads(data)


def _snapshot() -> dict[str, set[str]]:
    return {d: set(os.listdir(d)) for d in SCRATCH_DIRS if os.path.isdir(d) and os.access(d, os.R_OK)}


def _stray_files(before: dict[str, set[str]], uid: int) -> tuple[str, ...]:
    """Entries owned by the command's uid that appeared in the shared scratch directories during the run (the
    check where no read-only view is possible; other runs' directories are not counted)."""
    strays = []
    for directory, names in _snapshot().items():
        for name in sorted(names - before.get(directory, set())):
            path = f"{directory}/{name}"
            if not name.startswith(WORKDIR_PREFIX) and _owner(path) == uid:
                strays.append(path)
    return tuple(strays)


def _owner(path: str) -> int | None:
    try:
        return os.lstat(path).st_uid
    except OSError:
        return None


WORKDIR_PREFIX = "themis-sandbox-"


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))


# ------------------------------------------------------------------------------------------------- cgroups
PIDS_CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))


@functools.cache
def _pids_cgroup_root() -> Path | None:
    """A writable cgroup hierarchy with the pids controller (v1 ``pids``, or v2 with pids delegated), if any."""
    for root in PIDS_CGROUP_ROOTS:
        v2 = (root / "cgroup.subtree_control").is_file()
        has_pids = "pids" in (root / "cgroup.subtree_control").read_text() if v2 else (root / "pids.max").exists()
        if (root / "cgroup.procs").is_file() and os.access(root, os.W_OK) and (has_pids or root.name == "pids"):
            return root
    return None


def pids_cgroup(processes: int) -> Path | None:
    """A fresh cgroup for one run with ``pids.max = processes``; None where this machine has no writable one."""
    root = _pids_cgroup_root()
    if root is None:
        return None
    group = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=root))
    try:
        (group / "pids.max").write_text(str(processes))
    except OSError:
        group.rmdir()
        return None
    return group


MEMORY_CGROUP_ROOTS = (Path("/sys/fs/cgroup/memory"),)  # v1: memory.max_usage_in_bytes is the run's peak


@functools.cache
def _memory_cgroup_root() -> Path | None:
    for root in MEMORY_CGROUP_ROOTS:
        if (root / "memory.max_usage_in_bytes").is_file() and os.access(root, os.W_OK):
            return root
    return None


def memory_cgroup() -> Path | None:
    """A fresh memory cgroup for one run, whose peak usage is the command's own peak memory: ``ru_maxrss`` of a
    process forked from the (Python) supervisor keeps the supervisor's resident size as a floor, so small
    programs all measured about the same. None where this machine has no writable one (rusage is used then)."""
    root = _memory_cgroup_root()
    if root is None:
        return None
    try:
        return Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=root))
    except OSError:
        return None


def _memory_peak_kb(group: Path, fallback: int | None) -> int | None:
    """The cgroup's peak usage in KiB (the fallback where it cannot be read, or when the run never started)."""
    try:
        peak = int((group / "memory.max_usage_in_bytes").read_text())
    except (OSError, ValueError):
        return fallback
    return peak // 1024 if peak and fallback is not None else fallback


def remove_cgroup(group: Path) -> int:
    """Kill whatever is still in ``group`` (a supervisor the command killed leaves its tree here), then remove it;
    returns how many processes were killed."""
    killed = 0
    for _ in range(50):
        try:
            pids = [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return killed
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += len(pids)
        time.sleep(0.005)
    with contextlib.suppress(OSError):
        group.rmdir()
    return killed


# --------------------------------------------------------------------------------------------------- probe
_PROBE = (
    "import os, socket, sys\n"
    "try:\n"
    "    socket.create_connection(('1.1.1.1', 53), timeout=0.5); net = True\n"
    "except OSError:\n"
    "    net = False\n"
    "try:\n"
    "    open('/tmp/.themis-probe-%d' % os.getpid(), 'w').close(); writable = True\n"
    "except OSError:\n"
    "    writable = False\n"
    "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
    "print(os.getuid(), os.getpid(), net, writable, len(pids))\n"
)


MODE_ENV = "THEMIS_SANDBOX_MODE"
"""Set to ``namespaces`` or ``fallback`` to use only that mode (e.g. to test the fallback where namespaces work)."""


@functools.cache
def isolation() -> Isolation:
    """The strongest mode this machine gives, found by running a probe under each (cached per process)."""
    root = os.getuid() == 0
    candidates = [("namespaces", NOBODY if root else os.getuid())]
    if root:
        candidates.append(("namespaces", 0))
    candidates += [("fallback", NOBODY if root else None)]
    if root:
        candidates.append(("fallback", None))
    forced = os.environ.get(MODE_ENV)
    if forced:
        if forced not in ("namespaces", "fallback"):
            raise ValueError(f"{MODE_ENV} must be namespaces or fallback, got {forced!r}")
        candidates = [(mode, uid) for mode, uid in candidates if mode == forced]
    for mode, uid in candidates:
        level = Isolation(mode, uid, {"process_cap": False, "read_only_fs": mode == "namespaces"})
        measured = _probe(level)
        if measured is not None:
            logger.info("%s", measured.describe())
            return measured
    return Isolation("fallback", None, dict.fromkeys(GUARANTEE_NAMES, False))


def _probe(level: Isolation) -> Isolation | None:
    workdir = make_workdir()
    try:
        running = start([sys.executable, "-I", "-c", _PROBE], workdir=workdir, limits=SandboxLimits(), level=level)
        outcome = running.finish(10)
        if outcome.setup_error or outcome.exit_code != 0:
            logger.debug("sandbox probe %s/%s failed: %s", level.mode, level.outside_uid, outcome)
            return None
        _, pid, net, wrote_tmp, n_pids = outcome.stdout.decode().split()
        for stray in outcome.stray_files:
            Path(stray).unlink(missing_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    namespaces = level.mode == "namespaces"
    unprivileged = (level.outside_uid if level.outside_uid is not None else os.getuid()) != 0
    guarantees = {
        "separate_pids": namespaces and int(pid) == 2 and int(n_pids) <= 3,
        "no_network": net == "False",
        "read_only_fs": wrote_tmp == "False",
        "unprivileged": unprivileged,
        "process_cap": _pids_cgroup_root() is not None or unprivileged,
        "survivors_killed": True,
    }
    return Isolation(level.mode, level.outside_uid, guarantees)
