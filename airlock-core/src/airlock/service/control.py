"""Start, stop and report the background daemon: through systemd when it runs (the
system manager in isolated mode, the person's user manager in personal mode), otherwise
through :mod:`airlock.service.supervisor`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airlock.service import supervisor
from airlock.service.layout import AGENTS_GROUP, CORE, DAEMONS, VENV_DIR, Daemon
from airlock.service.supervisor import Supervised
from airlock.service.units import systemctl, systemd_is_pid1
from airlock.settings.paths import AirlockPaths

Say = Callable[[str], None]
UNIT = "airlock.service"


# -- isolated mode -------------------------------------------------------------------


def _installed_python(daemon: Daemon) -> Path:
    """The interpreter the installed unit runs (the copy under /opt, or the current one)."""
    try:
        for line in daemon.unit_file.read_text().splitlines():
            if line.startswith("ExecStart="):
                return Path(line.removeprefix("ExecStart=").split()[0].strip('"'))
    except OSError:
        pass
    copy = VENV_DIR / "bin" / "python"
    return copy if copy.exists() else Path(sys.executable)


KEEPER = ("-I", "-m", "airlock.service.keeper", "--")
"""Run as the host's user, like the host: ``-I`` for the same reason (see ``Daemon``)."""


def isolated_daemon(daemon: Daemon) -> Supervised:
    """How the supervisor runs *daemon* as its user; one that systemd would restart
    always runs under :mod:`airlock.service.keeper`, which restarts it."""
    python = str(_installed_python(daemon))
    argv = [python, *daemon.arguments()]
    return Supervised(
        argv=[python, *KEEPER, *argv] if daemon.respawn else argv,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(daemon.state_dir),
            "AIRLOCK_MODE": "isolated",
        },
        pid_file=daemon.pid_file,
        log_file=daemon.log_file,
        socket=daemon.socket,
        user=daemon.name,
        group=daemon.name,
        extra_groups=[daemon.socket_group] if daemon.socket_group else [],
        cwd=Path("/"),  # as systemd runs it: not a directory the daemon's user may write
        ready=daemon.ready,
        marker="airlock.service.keeper" if daemon.respawn else daemon.command[-1],
    )


def _require_installed() -> None:
    from airlock.errors import AirlockError

    if not CORE.unit_file.exists():
        raise AirlockError(
            "isolated mode is not installed",
            hint="sudo airlock service install --isolated --agent-user USER",
        )


def start_isolated(say: Say) -> None:
    from airlock.service.isolated import require_root

    require_root("service start")
    _require_installed()
    for daemon in DAEMONS:
        if systemd_is_pid1():
            _systemctl_or_fail("enable", "--now", daemon.unit_name)
            say(f"started {daemon.unit_name} (systemd)")
            continue
        prepare_run_dir(daemon)
        pid, started = supervisor.start(isolated_daemon(daemon))
        verb = "started" if started else "already running:"
        kept = " under a keeper that restarts it" if daemon.respawn else ""
        say(f"{verb} {daemon.name} as user {daemon.name} (pid {pid}){kept}, log {daemon.log_file}")


def prepare_run_dir(daemon: Daemon) -> None:
    """Its run directory as install made it (``/run`` is emptied at boot)."""
    from airlock.service.isolated import run_directory

    run_directory(daemon, lambda line: None)


def stop_isolated(say: Say) -> None:
    for daemon in reversed(DAEMONS):
        if systemd_is_pid1():
            systemctl("stop", daemon.unit_name)
            say(f"stopped {daemon.unit_name}")
            continue
        pid = supervisor.stop(isolated_daemon(daemon))
        say(f"stopped {daemon.name} (pid {pid})" if pid else f"{daemon.name} was not running")


def status_isolated() -> dict[str, Any]:
    facts: dict[str, Any] = {"mode": "isolated", "installed": CORE.unit_file.exists()}
    facts["manager"] = "systemd" if systemd_is_pid1() else "airlock service (no systemd)"
    for daemon in DAEMONS:
        if systemd_is_pid1():
            active = systemctl("is-active", daemon.unit_name).stdout.strip()
            facts[daemon.name] = {"running": active == "active", "state": active}
        else:
            facts[daemon.name] = supervisor.status(isolated_daemon(daemon))
    facts["socket_group"] = AGENTS_GROUP
    return facts


def _systemctl_or_fail(*args: str, user: bool = False) -> None:
    from airlock.errors import AirlockError

    done = systemctl(*args, user=user)
    if done.returncode != 0:
        raise AirlockError(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")


# -- personal mode -------------------------------------------------------------------


def user_unit_file() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user" / UNIT


def user_manager_running() -> bool:
    """Whether ``systemctl --user`` reaches a user manager (not in containers, su shells…)."""
    try:
        done = systemctl("is-system-running", user=True)
    except (OSError, TimeoutError):
        return False
    return done.stdout.strip() in {"running", "degraded", "starting", "initializing"}


def personal_daemon(paths: AirlockPaths) -> Supervised:
    return Supervised(
        argv=[sys.executable, "-m", "airlock", "serve"],
        env=dict(os.environ),
        pid_file=paths.run_dir / "airlock.pid",
        log_file=paths.data_dir / "daemon.log",
        socket=paths.socket,
    )


def _use_user_manager() -> bool:
    return user_unit_file().exists() and user_manager_running()


def start_personal(paths: AirlockPaths, say: Say) -> None:
    if _use_user_manager():
        _systemctl_or_fail("start", UNIT, user=True)
        say(f"started {UNIT} (systemd --user)")
        return
    paths.ensure_data_dirs()
    daemon = personal_daemon(paths)
    pid, started = supervisor.start(daemon)
    verb = "started" if started else "already running:"
    say(f"{verb} the daemon (pid {pid}), log {daemon.log_file}")


def stop_personal(paths: AirlockPaths, say: Say) -> None:
    if _use_user_manager():
        systemctl("stop", UNIT, user=True)
        say(f"stopped {UNIT}")
        return
    pid = supervisor.stop(personal_daemon(paths))
    say(f"stopped the daemon (pid {pid})" if pid else "the daemon was not running")


def status_personal(paths: AirlockPaths) -> dict[str, Any]:
    facts: dict[str, Any] = {"mode": "personal", "unit": str(user_unit_file())}
    facts["installed"] = user_unit_file().exists()
    if _use_user_manager():
        active = systemctl("is-active", UNIT, user=True).stdout.strip()
        facts.update(manager="systemd --user", running=active == "active", state=active)
    else:
        facts.update(manager="airlock service (no user manager)")
        facts.update(supervisor.status(personal_daemon(paths)))
    return facts


def install_personal(paths: AirlockPaths, say: Say) -> None:
    from airlock.service.units import user_unit

    keep = {k: os.environ[k] for k in ("AIRLOCK_HOME",) if k in os.environ}
    text = user_unit([sys.executable, "-m", "airlock", "serve"], keep)
    unit = user_unit_file()
    if unit.exists() and unit.read_text() == text:
        say(f"kept {unit}")
    else:
        existed = unit.exists()
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text(text)
        say(f"{'updated' if existed else 'wrote'} {unit}")
    if user_manager_running():
        systemctl("daemon-reload", user=True)
        _systemctl_or_fail("enable", "--now", UNIT, user=True)
        say(f"enabled and started {UNIT} (systemd --user)")
        return
    paths.ensure_data_dirs()
    say(
        "no systemd user manager here, so nothing was enabled. Run the daemon with\n"
        "  airlock service start    (detached; log in "
        f"{personal_daemon(paths).log_file})\n"
        "or `airlock serve` in a terminal of its own."
    )


def uninstall_personal(paths: AirlockPaths, say: Say) -> None:
    unit = user_unit_file()
    if user_manager_running() and unit.exists():
        systemctl("disable", "--now", UNIT, user=True)
    else:
        stop_personal(paths, say)
    if unit.exists():
        unit.unlink()
        say(f"removed {unit}")
        if user_manager_running():
            systemctl("daemon-reload", user=True)
    else:
        say(f"no unit at {unit}")
