"""``--import-personal USER``: move a person's personal-mode Airlock into isolated mode.

The enrolment (``totp.key``), vault, state database, audit key and audit files move as
they are, so the audit chain simply continues and ``airlock audit verify`` covers the
records written before and after the move. The personal connector host's directory
(``connectors/``: its vault and vault key) goes to the isolated host's. The personal
copies are removed.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from airlock.errors import AirlockError
from airlock.service.layout import CONFIG_DIR, CORE, HOST
from airlock.settings.paths import AirlockPaths, Mode, resolve_paths

MOVED = ("totp.key", "secrets.enc", "state.db", "state.db-wal", "state.db-shm", "audit.key")


def personal_paths(user: str) -> AirlockPaths:
    try:
        home = pwd.getpwnam(user).pw_dir
    except KeyError:
        raise AirlockError(f"no user named {user!r}") from None
    return resolve_paths({"HOME": home, "AIRLOCK_MODE": Mode.PERSONAL.value})


def check_personal(user: str) -> None:
    """Refuse before changing anything: nothing to import, or its daemon still runs."""
    paths = personal_paths(user)
    if not paths.data_dir.is_dir():
        raise AirlockError(f"{user} has no personal Airlock data in {paths.data_dir}")
    check_layout(paths, Path(pwd.getpwnam(user).pw_dir))
    refuse_while_running(user, paths.lock_file)


def check_layout(paths: AirlockPaths, home: Path) -> None:
    """The folders root will move files out of (and delete them from) are the person's
    own: inside *home*, reached through no link an agent running as the person planted
    (to another program's folder, whose files root would take and delete)."""
    home = home.resolve()
    for folder in (paths.data_dir, paths.config_file.parent):
        if not folder.exists() and not folder.is_symlink():
            continue
        if not folder.resolve().is_relative_to(home) or folder.is_symlink():
            raise AirlockError(
                f"{folder} leads outside {home} (a link?): not importing",
                hint="check what put it there",
            )


def refuse_while_running(user: str, lock_file: Path) -> None:
    """Refuse while the person's daemon holds its lock. Root opens the lock only as a plain
    file: an agent running as the person could make it a link to a device, which root
    would open read-write (opening some, a watchdog's, has effects of its own)."""
    if not _plain(lock_file):
        return
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise AirlockError(f"{lock_file} cannot be opened: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise AirlockError(
            f"{user}'s personal daemon is running",
            hint=f"stop it first (as {user}: airlock service stop)",
        ) from None
    finally:
        os.close(fd)


def _plain(path: Path, *, folder: bool = False) -> bool:
    """*path* is a real file (or folder), not a link: the person's directory may hold
    links planted by an agent, and root must not move or read what they point to."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return False
    if folder:
        ok = stat.S_ISDIR(found.st_mode)
    else:
        ok = stat.S_ISREG(found.st_mode) and found.st_nlink == 1
    if not ok:
        raise AirlockError(
            f"{path} is not a plain {'directory' if folder else 'file'} (a link?): not importing",
            hint="check what put it there; import only real files",
        )
    return True


def import_personal(user: str, say: Callable[[str], None]) -> None:
    from airlock.service.isolated import own_tree

    source = personal_paths(user)
    core = CORE
    target = core.state_dir
    moving = [source.data_dir / n for n in MOVED if _plain(source.data_dir / n)]
    parts = sorted(source.audit_dir.iterdir()) if _plain(source.audit_dir, folder=True) else []
    has_config = _plain(source.config_file)
    for part in parts:
        _plain(part)
    for path in moving:
        shutil.move(path, target / path.name)
        say(f"moved {path} to {target / path.name}")
    if parts or source.audit_dir.is_dir():
        (target / "audit").mkdir(mode=0o700, exist_ok=True)
        for part in parts:
            shutil.move(part, target / "audit" / part.name)
        source.audit_dir.rmdir()
        say(f"moved the audit log {source.audit_dir} (the chain continues)")
    own_tree(target, core.name)
    _import_host_state(source.data_dir / "connectors", say)
    if has_config:
        config = CONFIG_DIR / "config.yaml"
        fd = os.open(source.config_file, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            config.write_bytes(handle.read())
        source.config_file.unlink()
        say(f"moved {source.config_file} to {config}")
    _remove_leftovers(source.data_dir)


def _import_host_state(source: Path, say: Callable[[str], None]) -> None:
    """The personal host's files (plain files only) into the isolated host's state."""
    from airlock.service.isolated import own_tree

    if not _plain(source, folder=True):
        return
    files = sorted(source.iterdir())
    for path in files:
        _plain(path)
    for path in files:
        shutil.move(path, HOST.state_dir / path.name)
    source.rmdir()
    own_tree(HOST.state_dir, HOST.name)
    say(f"moved {source} ({len(files)} files) to {HOST.state_dir}")


def _remove_leftovers(data_dir: Path) -> None:
    """The lock file, the socket directory and the vault's lock: nothing secret."""
    for leftover in ("daemon.lock", ".secrets.enc.lock"):
        (data_dir / leftover).unlink(missing_ok=True)
