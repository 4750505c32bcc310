"""Run a daemon in the background without systemd (containers, machines where systemd is
not PID 1): detached in its own session, as its own user, output appended to a log, its
pid in a pid file; stopped with SIGTERM (SIGKILL after a grace period).

A pid file can outlive its process and the pid be reused: a pid counts only while
``/proc/PID/cmdline`` is still the daemon's (``airlock serve``, or the connector host's
keeper) and, for a daemon run as a user, the process is that user's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from airlock.clients.local_daemon import answering_pid
from airlock.errors import AirlockError, DaemonUnreachable


@dataclass(frozen=True)
class Supervised:
    argv: list[str]
    env: dict[str, str]
    pid_file: Path
    log_file: Path
    socket: Path | None
    """Ready once the daemon answers here; None: ready once it has stayed up a moment."""
    user: str | None = None
    """Run as this user (isolated mode); None runs as the caller."""
    group: str | None = None
    extra_groups: list[str] = field(default_factory=list)
    cwd: Path = Path("/")
    ready: Literal["answers", "socket", "alive"] = "answers"
    """Started once it answers ``GET /v1/status`` on :attr:`socket`, once :attr:`socket`
    exists, or once it has stayed up a moment."""
    marker: str = "serve"
    """An argument of the daemon's own command line."""


def _is_airlock_daemon(pid: int, marker: str = "serve", user: str | None = None) -> bool:
    try:
        proc = Path(f"/proc/{pid}")
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        owner = process_uid(pid)
    except (OSError, ValueError):
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":  # exited, not yet reaped
        return False
    if user is not None:
        import pwd

        try:
            if owner != pwd.getpwnam(user).pw_uid:
                return False
        except KeyError:
            return False
    return marker.encode() in cmdline and any(b"airlock" in part for part in cmdline)


def process_uid(pid: int) -> int:
    """The real uid *pid* runs as (``/proc/PID/status``): ``/proc/PID`` itself is root's
    for a process that made itself non-dumpable, as the daemon and the host do."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise ValueError(f"no Uid line for process {pid}")


def _is_it(daemon: Supervised, pid: int) -> bool:
    return _is_airlock_daemon(pid, daemon.marker, daemon.user)


def children(pid: int) -> list[int]:
    """The processes *pid* started that still run (the keeper's host)."""
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def running_pid(daemon: Supervised) -> int | None:
    """The pid in the pid file while that process is still the daemon."""
    try:
        fd = os.open(daemon.pid_file, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as handle:
            pid = int(handle.read(32).strip())
    except (OSError, ValueError):
        return None
    return pid if _is_it(daemon, pid) else None


def _write_pid(path: Path, pid: int) -> None:
    """Root writes into a directory the service user owns: never through a link it
    planted (a fresh file, O_EXCL and O_NOFOLLOW)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{pid}\n")


def _open_log(daemon: Supervised) -> int:
    daemon.log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(daemon.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1:
        os.close(fd)
        raise AirlockError(
            f"{daemon.log_file} is not a plain file of its own (a link?): not using it",
            hint="remove it and start again",
        )
    if daemon.user is not None:
        import pwd

        entry = pwd.getpwnam(daemon.user)
        os.fchown(fd, entry.pw_uid, entry.pw_gid)
    return fd


def start(daemon: Supervised, *, timeout: float = 30.0) -> tuple[int, bool]:
    """Start the daemon unless it runs; returns its pid and whether it was already running.

    Returns once the daemon answers on its socket; a daemon that exits first raises an
    error carrying the end of its log.
    """
    pid = running_pid(daemon)
    if pid is not None:
        return pid, False
    if daemon.ready == "socket" and daemon.socket is not None:
        _remove_stale_socket(daemon.socket)
    log_fd = _open_log(daemon)
    try:
        proc = subprocess.Popen(
            daemon.argv,
            env=daemon.env,
            cwd=daemon.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            user=daemon.user,
            group=daemon.group,
            extra_groups=daemon.extra_groups if daemon.user is not None else None,
            close_fds=True,
        )
    finally:
        os.close(log_fd)
    _write_pid(daemon.pid_file, proc.pid)
    deadline = time.monotonic() + timeout
    settled = time.monotonic() + 1.0
    while not _ready(daemon, proc.pid, settled):
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # with what it started
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            daemon.pid_file.unlink(missing_ok=True)
            raise DaemonUnreachable(
                f"the daemon did not start; the end of {daemon.log_file}:\n{_tail(daemon)}",
                hint="fix what the log says, then run `airlock service start` again",
            )
        time.sleep(0.05)
    return proc.pid, True


def _remove_stale_socket(path: Path) -> None:
    """A socket left by a daemon that died would read as ready: remove it (only a
    socket: unlink never follows a link, and anything else is left alone)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except OSError:
        return False


def _ready(daemon: Supervised, pid: int, settled: float) -> bool:
    if daemon.socket is None or daemon.ready == "alive":
        return time.monotonic() > settled
    if daemon.ready == "socket":
        return _is_socket(daemon.socket)
    return answering_pid(daemon.socket) == pid


def _tail(daemon: Supervised, limit: int = 2000) -> str:
    try:
        return daemon.log_file.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


def stop(daemon: Supervised, *, timeout: float = 15.0) -> int | None:
    """SIGTERM the daemon (SIGKILL after *timeout*); the pid stopped, or None if none ran."""
    pid = running_pid(daemon)
    if pid is None:
        daemon.pid_file.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_it(daemon, pid):
        if time.monotonic() > deadline:
            # Its whole process group (a keeper's host too): it was started in a
            # session of its own, so the group is its and its children's alone.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    daemon.pid_file.unlink(missing_ok=True)
    return pid


def status(daemon: Supervised) -> dict[str, object]:
    pid = running_pid(daemon)
    if daemon.ready == "socket":
        started = children(pid) if pid is not None else []
        return {
            "running": bool(started),
            "pid": started[0] if started else None,
            "keeper_pid": pid,
            "listening": bool(started) and daemon.socket is not None and _is_socket(daemon.socket),
            "socket": str(daemon.socket) if daemon.socket else None,
            "log": str(daemon.log_file),
            "pid_file": str(daemon.pid_file),
        }
    return {
        "running": pid is not None,
        "pid": pid,
        "answers": pid is not None
        and daemon.socket is not None
        and answering_pid(daemon.socket) == pid,
        "socket": str(daemon.socket) if daemon.socket else None,
        "log": str(daemon.log_file),
        "pid_file": str(daemon.pid_file),
    }
