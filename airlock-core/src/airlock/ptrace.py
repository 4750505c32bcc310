"""What the kernel's Yama ``ptrace_scope`` means for the daemon's memory.

In personal mode an agent runs as the same user as the daemon; whether it can attach to
the daemon and read the secrets in its memory (the unlocked passphrase key too) is up to
Yama. In isolated mode the daemon is another user, which no setting here opens.
"""

from __future__ import annotations

from pathlib import Path

SCOPE_FILE = Path("/proc/sys/kernel/yama/ptrace_scope")

MEANINGS = {
    0: "classic: any process of the same user can read the daemon's memory "
    "(in personal mode an agent running as you can)",
    1: "restricted: only a parent process may read another's memory (an agent you "
    "started cannot read a daemon it did not start)",
    2: "admin-only: only processes with CAP_SYS_PTRACE may read another's memory",
    3: "no attach: no process may read another's memory",
}
ABSENT = "Yama is not enabled: like 0, any process of the same user can read the daemon's memory"


def ptrace_scope(path: Path = SCOPE_FILE) -> tuple[int | None, str]:
    """The setting (None without Yama) and what it means."""
    try:
        value = int(path.read_text().strip())
    except (OSError, ValueError):
        return None, ABSENT
    return value, MEANINGS.get(value, f"unknown value {value}")


def same_user_can_read_memory(value: int | None) -> bool:
    return value is None or value == 0
