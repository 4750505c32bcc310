"""System users and groups, through the distribution's own tools (useradd, groupadd…).

Every function is idempotent and says what it did, so installing twice reports what
already existed instead of failing.
"""

from __future__ import annotations

import grp
import pwd
import subprocess
from pathlib import Path

from airlock.errors import AirlockError

NOLOGIN = next(
    (p for p in ("/usr/sbin/nologin", "/sbin/nologin") if Path(p).exists()), "/bin/false"
)


class AccountError(AirlockError):
    code = "account_error"


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AccountError(
            f"{' '.join(command)} failed: {done.stderr.strip() or done.returncode}",
            hint="run `airlock service install --isolated` as root",
        )


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def ensure_group(name: str) -> bool:
    """Create the system group *name*; False when it already existed."""
    if group_exists(name):
        return False
    _run("groupadd", "--system", name)
    return True


def ensure_user(name: str, *, home: Path, description: str) -> bool:
    """Create the system user *name* with a group of the same name, no login shell and
    *home* (not created); False when it already existed."""
    if user_exists(name):
        return False
    ensure_group(name)
    _run(
        "useradd",
        "--system",
        "--gid",
        name,
        "--home-dir",
        str(home),
        "--no-create-home",
        "--shell",
        NOLOGIN,
        "--comment",
        description,
        name,
    )
    return True


def add_member(group: str, user: str) -> bool:
    """Add *user* to *group*; False when it was already a member."""
    if not user_exists(user):
        raise AccountError(f"no user named {user!r}", hint="create the agent's user first")
    if user in grp.getgrnam(group).gr_mem:
        return False
    _run("gpasswd", "--add", user, group)
    return True


def remove_user(name: str) -> bool:
    if not user_exists(name):
        return False
    _run("userdel", name)
    # userdel removes the user's own group only when nothing else uses it.
    remove_group(name)
    return True


def remove_group(name: str) -> bool:
    if not group_exists(name):
        return False
    _run("groupdel", name)
    return True


def ids(user: str) -> tuple[int, int]:
    """The uid and primary gid of *user*."""
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
