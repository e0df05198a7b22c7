"""The sandbox supervisor: run one command contained, enforce its clock, kill everything it started.

Started as ``python -I -S launcher.py CONFIG_JSON`` by :mod:`themis_rm.sandbox.process` (standard library only,
no site: it starts in milliseconds and imports nothing the candidate could have touched). Two modes:

* ``namespaces``: a fork enters new user, PID, network, mount and IPC namespaces; the supervisor maps the
  namespace's root to an unprivileged user outside (``nobody`` when we are root, else our own uid), so the
  ``RLIMIT_NPROC`` cap binds. The namespace's PID 1 is our own tiny init: it remounts every filesystem read-only
  except the run's directory, mounts a fresh ``/proc`` (the candidate sees only its own processes), then starts
  the command and exits with it, at which point the kernel kills every process left in the namespace. The
  network namespace has only a down loopback.
* ``fallback`` (no user namespaces): the supervisor becomes a child subreaper, so every orphan the command leaves
  is re-parented to it, and kills its whole descendant tree at the end; as root it drops the command to
  ``nobody`` (so the command cannot signal the supervisor) and unshares the network.

Either way: the clock is the supervisor's, ``setrlimit`` caps address space, CPU, file size, open files and
processes (and, where the parent made one, a pids cgroup caps processes whatever the uid), the command gets only
the file descriptors it was given, and the supervisor's status (exit code or signal, timed out, setup error, the
command's CPU seconds and peak resident memory) goes to the parent on a pipe the command never holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import resource
import select
import signal
import sys
import time

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x00020000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    16384,
    1 << 18,
)
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
_OPTION_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
NOBODY = 65534
EXIT_SETUP = 125

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    result = _libc.mount(_bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), None)
    _check(result, f"mount {target}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def _mount_points() -> list[tuple[str, int]]:
    """Every mount point with the per-mount flags it already has (a remount must keep the locked ones)."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # \040 is a space
            flags = 0
            for option in fields[5].split(","):
                flags |= _OPTION_FLAGS.get(option, 0)
            points.append((point, flags))
    return points


def _read_only_except(writable: str) -> dict:
    """Every mount read-only but ``writable`` (bind-mounted onto itself first), then a /proc of this namespace.

    Returns what held: ``read_only`` (every other mount remounted), ``proc`` (the fresh /proc mounted).
    """
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount(writable, writable, None, MS_BIND | MS_REC)
    all_read_only = True
    for point, flags in _mount_points():
        if point == writable or point.startswith(writable + "/") or point == "/proc" or point.startswith("/proc/"):
            continue
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError:
            all_read_only = all_read_only and os.statvfs(point).f_flag & os.ST_RDONLY != 0
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        proc = True
    except OSError:  # a container's masked /proc refuses another mount: the old one stays (pids still unreachable)
        proc = False
    return {"read_only": all_read_only, "proc": proc}


def _join_cgroup(config: dict, pid: int) -> None:
    """Put ``pid`` (and so all it starts) in the run's pids cgroup, whose ``pids.max`` caps its processes, and its
    memory cgroup, whose peak usage is the run's peak memory."""
    for key in ("cgroup", "memory_cgroup"):
        if config.get(key):
            with open(os.path.join(config[key], "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write(str(pid))


def _apply_limits(limits: dict) -> None:
    for name, value in limits.items():
        which = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(which, (value, value))


def _exec_command(config: dict) -> None:
    """In the process that becomes the command: limits, descriptors, directory, environment, then exec."""
    keep = set(config["keep_fds"]) | {0, 1, 2}
    for fd in os.listdir("/proc/self/fd"):
        number = int(fd)
        if number not in keep:
            with contextlib.suppress(OSError):
                os.set_inheritable(number, False)
    os.chdir(config["cwd"])
    _apply_limits(config["limits"])
    for number in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; the command gets the defaults back
        signal.signal(number, signal.SIG_DFL)
    os.execve(config["argv"][0], config["argv"], config["env"])


def _kill_tree() -> int:
    """Stop then kill every descendant (subreaper: orphans are ours too) until none is left; returns how many."""
    killed = 0
    for _ in range(100):
        children = _children(os.getpid())
        if not children:
            break
        family = _descendants(children)
        for pid in family:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        for pid in family:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += len(family)
        _reap(block=False)
        time.sleep(0.002)
    _reap(block=False)
    return killed


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(child) for child in children.read().split()]
    return found


def _descendants(roots: list[int]) -> list[int]:
    seen, stack = [], list(roots)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.append(pid)
            stack += _children(pid)
    return seen


def _reap(block: bool) -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
            if pid == 0:
                return


def _wait(pid: int, deadline: float) -> tuple[int | None, bool, dict]:
    """Wait for ``pid`` until ``deadline``; returns (wait status, timed out, its resource usage)."""
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, True, {}
            ready, _, _ = select.select([pidfd], [], [], remaining)
            if ready:
                _, status, usage = os.wait4(pid, 0)
                return status, False, _usage(usage)
    finally:
        os.close(pidfd)


def _outcome(status: int | None, timed_out: bool) -> dict:
    if status is None:
        return {"exit": None, "signal": None, "timed_out": timed_out}
    if os.WIFSIGNALED(status):
        return {"exit": None, "signal": os.WTERMSIG(status), "timed_out": timed_out}
    return {"exit": os.WEXITSTATUS(status), "signal": None, "timed_out": timed_out}


# ------------------------------------------------------------------------------------------------ namespaces
def _namespace_init(config: dict, ready_w: int) -> None:
    """PID 1 of the new namespace: read-only view, fresh /proc, then the command; exits with the command."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    view = _read_only_except(config["cwd"]) if config["read_only"] else {"read_only": False, "proc": False}
    os.write(ready_w, json.dumps(view).encode() + b"\n")
    os.close(ready_w)
    command = os.fork()
    if command == 0:
        _exec_command(config)
    usage_w = config["_usage_w"]
    while True:  # as init we reap every orphan; the command's end ends the namespace
        pid, status, usage = os.wait4(-1, 0)
        if pid == command:
            os.write(usage_w, json.dumps(_usage(usage)).encode())
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            os._exit(code)


def _usage(usage: resource.struct_rusage) -> dict:
    """The command's own CPU seconds and peak resident memory (its waited-for children included)."""
    return {"cpu_s": round(usage.ru_utime + usage.ru_stime, 6), "max_rss_kb": usage.ru_maxrss}


def _enter_namespaces(config: dict, go_r: int, mapped_w: int) -> None:
    """The fork between supervisor and init: unshare, wait for the id maps, become the namespace's root."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | (CLONE_NEWNET if config["no_network"] else 0)
    _check(_libc.unshare(flags), "unshare")
    os.write(mapped_w, b"u")
    if os.read(go_r, 1) != b"m":
        os._exit(EXIT_SETUP)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    init = os.fork()
    if init == 0:
        _namespace_init(config, config["_ready_w"])
    os.close(config["_ready_w"])  # init's copy is the only one: its death before the command reads as EOF
    _, status = os.waitpid(init, 0)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _run_in_namespaces(config: dict) -> dict:
    unshared_r, unshared_w = os.pipe()
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    usage_r, usage_w = os.pipe()
    config["_ready_w"], config["_usage_w"] = ready_w, usage_w
    child = os.fork()
    if child == 0:
        try:
            os.close(config["status_fd"])
            os.close(unshared_r)
            os.close(go_w)
            os.close(ready_r)
            os.close(usage_r)
            _enter_namespaces(config, go_r, unshared_w)
        except BaseException as error:  # report any setup failure, then leave
            os.write(2, f"themis sandbox setup: {error}\n".encode())
        os._exit(EXIT_SETUP)
    os.close(unshared_w)
    os.close(go_r)
    os.close(ready_w)
    os.close(usage_w)
    deadline = time.monotonic() + config["timeout_s"]
    try:
        if os.read(unshared_r, 1) != b"u":
            raise OSError("the namespace process died before unsharing")
        _join_cgroup(config, child)
        uid, gid = config["outside_ids"]
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/{child}/{name}", "w", encoding="ascii") as handle:
                handle.write(text)
        os.write(go_w, b"m")
        view = _read_line(ready_r)
        if view is None:
            raise OSError("the namespace's init died before the command started")
    except OSError as error:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        return {"setup_error": str(error), **_outcome(None, False)}
    status, timed_out, _ = _wait(child, deadline)
    if timed_out:
        os.kill(child, signal.SIGKILL)  # PDEATHSIG takes init with it, and the kernel the whole namespace
        os.waitpid(child, 0)
    usage = _read_all(usage_r)  # init's account of the command alone (empty when it was killed)
    return {"setup_error": None, **view, **_outcome(status, timed_out), **(json.loads(usage) if usage else {})}


def _read_all(fd: int) -> bytes:
    data = b""
    try:
        while chunk := os.read(fd, 4096):
            data += chunk
    finally:
        os.close(fd)
    return data


def _read_line(fd: int) -> dict | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


# -------------------------------------------------------------------------------------------------- fallback
def _run_with_subreaper(config: dict) -> dict:
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
    deadline = time.monotonic() + config["timeout_s"]
    command = os.fork()
    if command == 0:
        try:
            _join_cgroup(config, os.getpid())
            if config["no_network"]:
                with contextlib.suppress(OSError):
                    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            if os.getuid() == 0 and config["drop_root"]:
                os.setgroups([])
                os.setresgid(NOBODY, NOBODY, NOBODY)
                os.setresuid(NOBODY, NOBODY, NOBODY)
            _exec_command(config)
        except BaseException as error:
            os.write(2, f"themis sandbox setup: {error}\n".encode())
        os._exit(EXIT_SETUP)
    status, timed_out, usage = _wait(command, deadline)
    killed = _kill_tree()
    if timed_out:
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(command, 0)
        status = None
    return {"setup_error": None, "killed": killed, **_outcome(status, timed_out), **usage}


def main() -> None:
    config = json.loads(sys.argv[1])
    status_fd = config["status_fd"]
    os.set_inheritable(status_fd, False)
    try:
        run = _run_in_namespaces if config["mode"] == "namespaces" else _run_with_subreaper
        report = run(config)
    except OSError as error:
        report = {"setup_error": str(error), "exit": None, "signal": None, "timed_out": False}
    os.write(status_fd, json.dumps(report).encode())
    os.close(status_fd)


if __name__ == "__main__":
    main()
