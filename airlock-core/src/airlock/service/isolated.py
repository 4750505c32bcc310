"""``airlock service install|uninstall --isolated``: users, groups, directories, program,
units. Each step is idempotent and reports what it found, so a second install says what
already existed and changes nothing else.

Ownership (an agent user reads none of it; the core ``airlock`` reads nothing of the
connector host ``airlock-connectors``, and the host nothing of the core):

===========================  ===============================  =====
/etc/airlock                 root:airlock                     0750
/etc/airlock/config          root:airlock                     0640
/var/lib/airlock             airlock:airlock                  0700
/var/log/airlock             airlock:airlock                  0700
/run/airlock                 airlock:airlock-agents           0750   socket 0660
/var/lib/airlock-connectors  airlock-connectors:…connectors   0700   vault, vault key
/var/log/airlock-connectors  airlock-connectors:…connectors   0700
/run/airlock-connectors      airlock-connectors:airlock       2750   socket 0660
/opt/airlock/venv            root:root                        0755   (the program, no secret)
===========================  ===============================  =====

The host's run directory is setgid: the socket the host creates there gets group
``airlock``, so the core reaches it without either user joining the other's group.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from airlock.errors import AirlockError
from airlock.service import accounts
from airlock.service.layout import (
    AGENTS_GROUP,
    CONFIG_DIR,
    CORE,
    DAEMONS,
    HOST_SOCKET,
    HOST_TIMEOUT,
    PROGRAM_DIR,
    VENV_DIR,
    Daemon,
)
from airlock.service.units import system_unit, systemctl, systemd_is_pid1

Say = Callable[[str], None]


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise AirlockError(f"{what} needs root", hint=f"sudo airlock {what}")


def own_tree(root: Path, user: str, group: str | None = None) -> None:
    """Give *root* and everything under it to *user* (symlinks left alone).

    The tree's owner may be hostile (a compromised daemon) and change it while root works:
    each folder is opened once and what is in it is changed through that open folder, so
    a folder swapped for a link to /etc meanwhile leads nowhere."""
    uid, gid = accounts.ids(user)
    if group is not None:
        import grp

        gid = grp.getgrnam(group).gr_gid
    if not stat.S_ISDIR(root.lstat().st_mode):
        raise AirlockError(f"{root} is not a directory (a link?): refusing to chown it")
    for where, folders, files, fd in os.fwalk(root, follow_symlinks=False):
        os.fchown(fd, uid, gid)
        for name in files + [f for f in folders if _is_link(f, fd)]:
            found = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISREG(found.st_mode) and found.st_nlink > 1:
                # A hard link planted by whoever owned this tree could be a system file.
                raise AirlockError(
                    f"{where}/{name} has {found.st_nlink} hard links: refusing to chown it"
                )
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)


def _is_link(name: str, folder: int) -> bool:
    """A link to a folder (listed with the folders; :func:`os.fwalk` does not enter it)."""
    return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)


def _directory(path: Path, owner: str, group: str, mode: int, say: Say) -> None:
    """*path* as a folder of *owner*:*group* with *mode*. Root changes the folder it
    opened, never what a link put there (or swapped in meanwhile) points to."""
    existed = path.is_dir() and not path.is_symlink()
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    import grp

    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise AirlockError(
            f"{path} is not a directory (a link?): not installing through it",
            hint="check what put it there, and move it away",
        ) from None
    try:
        os.fchown(fd, accounts.ids(owner)[0], grp.getgrnam(group).gr_gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    say(f"{'kept' if existed else 'created'} {path} ({owner}:{group} {mode:o})")


def _config_file(say: Say) -> None:
    import grp

    from airlock.settings.config_template import CONFIG_TEMPLATE

    config = CONFIG_DIR / "config.yaml"
    if config.exists():
        say(f"kept {config}")
    else:
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(CONFIG_TEMPLATE)
        say(f"created {config}")
    os.chown(config, 0, grp.getgrnam(CORE.name).gr_gid)
    config.chmod(0o640)


def _accounts(agent_users: Sequence[str], say: Say) -> None:
    for daemon in DAEMONS:
        made = accounts.ensure_user(
            daemon.name, home=daemon.state_dir, description=f"Airlock daemon {daemon.name}"
        )
        say(f"{'created' if made else 'kept'} system user and group {daemon.name}")
    made = accounts.ensure_group(AGENTS_GROUP)
    say(f"{'created' if made else 'kept'} group {AGENTS_GROUP} (may use the socket)")
    for user in agent_users:
        added = accounts.add_member(AGENTS_GROUP, user)
        say(f"{'added' if added else 'kept'} {user} in {AGENTS_GROUP}")


def run_directory(daemon: Daemon, say: Say) -> None:
    """Where its socket lives: reachable by its socket's group only. The host's is
    setgid (2750) so its socket gets the core's group with it."""
    mode = daemon.run_dir_mode
    _directory(daemon.run_dir, daemon.name, daemon.directory_group, mode, say)


def _directories(say: Say) -> None:
    _directory(CONFIG_DIR, "root", CORE.name, 0o750, say)
    _config_file(say)
    for daemon in DAEMONS:
        _directory(daemon.state_dir, daemon.name, daemon.name, 0o700, say)
        own_tree(daemon.state_dir, daemon.name)
        _directory(daemon.log_dir, daemon.name, daemon.name, 0o700, say)
        run_directory(daemon, say)


HOST_KEY = (
    "\n# Isolated mode: the connector host (vault, credentials, connectors) runs as its own\n"
    "# user; the core reaches it here (written by airlock service install --isolated).\n"
    "connector_host:\n"
    f"  socket: {HOST_SOCKET}\n"
    "  timeout: {timeout}\n"
)


def _connector_host_key(say: Say) -> None:
    """``connector_host: {socket, timeout}`` in the config: the core connects to the
    host's socket instead of running a host of its own. An existing block with another
    socket is replaced (its timeout kept); the rest of the file is left as it was."""
    import yaml

    config = CONFIG_DIR / "config.yaml"
    text = config.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise AirlockError(f"{config}: not valid YAML ({exc}): cannot add connector_host") from None
    current = data.get("connector_host") if isinstance(data, dict) else None
    if isinstance(current, dict) and str(current.get("socket")) == str(HOST_SOCKET):
        say(f"kept connector_host in {config}")
        return
    timeout = current.get("timeout", HOST_TIMEOUT) if isinstance(current, dict) else HOST_TIMEOUT
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if re.match(r"connector_host\s*:", line):
            inside = True
            continue
        if inside and (line[:1] in (" ", "\t") or not line.strip()):
            continue
        inside = False
        kept.append(line)
    body = "".join(kept)
    if body and not body.endswith("\n"):
        body += "\n"
    body += HOST_KEY.format(timeout=timeout)
    fresh = config.with_name(".config.yaml.new")
    fresh.unlink(missing_ok=True)
    before = config.stat()
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(body)
        os.fchown(out.fileno(), before.st_uid, before.st_gid)  # root:airlock, as made
        os.fchmod(out.fileno(), stat.S_IMODE(before.st_mode))
    os.replace(fresh, config)
    verb = "updated" if current is not None else "added"
    say(f"{verb} connector_host in {config}: the core reaches the host at {HOST_SOCKET}")


def _units(python: Path, say: Say) -> None:
    for daemon in DAEMONS:
        text = system_unit(daemon, python)
        unit = daemon.unit_file
        if unit.exists() and unit.read_text() == text:
            say(f"kept {unit}")
            continue
        unit.parent.mkdir(parents=True, exist_ok=True)
        existed = unit.exists()
        unit.write_text(text)
        unit.chmod(0o644)
        say(f"{'updated' if existed else 'wrote'} {unit}")
    if systemd_is_pid1():
        systemctl("daemon-reload")


def install(
    agent_users: Sequence[str],
    *,
    wheels: Path | None,
    import_personal: str | None,
    say: Say,
) -> Path:
    """Set everything up; returns the interpreter the units run."""
    from airlock.service.program import check_program, ensure_program

    require_root("service install --isolated")
    for user in agent_users:
        if not accounts.user_exists(user):
            raise AirlockError(f"no user named {user!r}", hint="create the agent's user first")
    if import_personal is not None:
        from airlock.service.migrate import check_personal

        check_personal(import_personal)
    _accounts(agent_users, say)
    _directories(say)
    python = ensure_program(CORE.name, wheels, say)
    for daemon in DAEMONS:
        if daemon is not CORE:
            check_program(daemon.name, python)
    if import_personal is not None:
        from airlock.service.migrate import import_personal as move

        move(import_personal, say)
    _connector_host_key(say)
    _units(python, say)
    return python


def _remove(path: Path, say: Say) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        return
    say(f"removed {path}")


def remove_program(say: Say) -> None:
    """The copy install made (``/opt/airlock/venv``), and ``/opt/airlock`` if that leaves
    it empty: whatever else is there was not ours to delete."""
    _remove(VENV_DIR, say)
    try:
        PROGRAM_DIR.rmdir()
    except FileNotFoundError:
        return
    except OSError:
        say(f"kept {PROGRAM_DIR}: it holds files airlock did not put there")
        return
    say(f"removed {PROGRAM_DIR}")


def uninstall(*, keep_data: bool, say: Say) -> None:
    from airlock.service.control import stop_isolated

    require_root("service uninstall --isolated")
    stop_isolated(say)
    for daemon in DAEMONS:
        if systemd_is_pid1() and daemon.unit_file.exists():
            systemctl("disable", daemon.unit_name)
        _remove(daemon.unit_file, say)
    if systemd_is_pid1():
        systemctl("daemon-reload")
    for daemon in DAEMONS:
        _remove(daemon.run_dir, say)
    remove_program(say)
    data = [CONFIG_DIR, *(p for d in DAEMONS for p in (d.state_dir, d.log_dir))]
    if keep_data:
        say(f"kept {', '.join(map(str, data))} (--keep-data)")
    else:
        for path in data:
            _remove(path, say)
    for daemon in DAEMONS:
        if accounts.remove_user(daemon.name):
            say(f"removed user and group {daemon.name}")
    if accounts.remove_group(AGENTS_GROUP):
        say(f"removed group {AGENTS_GROUP}")


def give_state_to_service(data_dir: Path) -> None:
    """After root changed isolated state (``airlock totp setup``), hand it back to the
    service user so the daemon can read what root wrote."""
    if os.geteuid() == 0 and accounts.user_exists(CORE.name) and data_dir.is_dir():
        own_tree(data_dir, CORE.name)
