"""Who may read Airlock's memory: its own refusal, and the kernel's Yama ``ptrace_scope``.

In personal mode an agent runs as the same user as the daemon, and a `command` server of
the MCP proxy as the same user as the connector host. Both processes holding secrets (the
daemon: the TOTP secret, the unlocked passphrase's key; the connector host: every
service's credentials) make themselves non-dumpable at start (:func:`refuse_ptrace`), so
no process of their user may attach to them or read their ``/proc/PID/mem`` or
``environ``, whatever Yama says; only root can. What Yama still decides is whether such a
process can read the person's *other* processes: the terminal where a code or the
passphrase is typed, and the ``airlock`` command reading it (which refuses too, while it
holds one). In isolated mode the daemon is another user, which no setting here opens.
"""

from __future__ import annotations

from pathlib import Path

SCOPE_FILE = Path("/proc/sys/kernel/yama/ptrace_scope")

PR_SET_DUMPABLE = 4

MEANINGS = {
    0: "classic: any process of the same user can read the memory of your other processes "
    "(in personal mode an agent running as you can read your terminal where you type a "
    "code or passphrase; the daemon and connector host refuse it)",
    1: "restricted: only a parent process may read another's memory (an agent you "
    "started cannot read a terminal it did not start)",
    2: "admin-only: only processes with CAP_SYS_PTRACE may read another's memory",
    3: "no attach: no process may read another's memory",
}
ABSENT = (
    "Yama is not enabled: like 0, any process of the same user can read the memory of your "
    "other processes (your terminal where you type a code or passphrase; the daemon and "
    "connector host refuse it)"
)


def ptrace_scope(path: Path = SCOPE_FILE) -> tuple[int | None, str]:
    """The setting (None without Yama) and what it means."""
    try:
        value = int(path.read_text().strip())
    except (OSError, ValueError):
        return None, ABSENT
    return value, MEANINGS.get(value, f"unknown value {value}")


def same_user_can_read_memory(value: int | None) -> bool:
    return value is None or value == 0


def refuse_ptrace() -> bool:
    """Make this process non-dumpable: no process of its user may ``ptrace`` it or read its
    ``/proc/PID/mem``, ``environ`` or open files (root still can), and it leaves no core
    dump. Lasts until the process ends or execs another program. False where the kernel
    has no ``prctl`` (not Linux): then nothing changed."""
    return prctl(PR_SET_DUMPABLE, 0)


def prctl(option: int, value: int) -> bool:
    """Set one of this process's ``prctl`` options; False where the kernel refused or has
    no ``prctl`` (not Linux)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
