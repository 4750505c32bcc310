"""Where isolated mode lives, and the daemons it runs.

One :class:`Daemon` per background process with its own system user: the connector host
(``airlock-connectors``: vault, credentials, connectors) and the core (``airlock``:
socket, approvals, TOTP, sessions, audit). :data:`DAEMONS` lists them in start order;
accounts, units, the supervisor and uninstall loop over it.

The host's socket directory is shared with the core by the directory alone, not by a
group membership: ``/run/airlock-connectors`` is ``airlock-connectors:airlock`` with the
setgid bit (2750), so the socket the host creates there is ``airlock-connectors:airlock``
0660. Only ``airlock`` (and root) can reach it; neither user joins the other's group, so
neither gains group access to anything else of the other's.
"""

from __future__ import annotations

import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from airlock.settings.paths import (
    ISOLATED_CONFIG_DIR,
    ISOLATED_CONNECTORS_DIR,
    ISOLATED_DATA_DIR,
    ISOLATED_RUN_DIR,
)

AGENTS_GROUP = "airlock-agents"
"""Members may connect to the daemon's socket: the agents' users and the person's."""

CONFIG_DIR = ISOLATED_CONFIG_DIR
STATE_ROOT = ISOLATED_DATA_DIR
RUN_DIR = ISOLATED_RUN_DIR
LOG_DIR = Path("/var/log/airlock")
PROGRAM_DIR = Path("/opt/airlock")
VENV_DIR = PROGRAM_DIR / "venv"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")

HOST_RUN_DIR = Path("/run/airlock-connectors")
HOST_SOCKET = HOST_RUN_DIR / "host.sock"
HOST_TIMEOUT = 30
"""Seconds the core waits for one answer of the host (``connector_host.timeout``)."""
PEER_UID = "{peer_uid}"
"""Stands in a command for the uid of the daemon's peer (filled in when run)."""


@dataclass(frozen=True)
class Daemon:
    name: str
    """Its system user, its primary group and its unit (``NAME.service``)."""
    description: str
    command: tuple[str, ...]
    """The arguments after the interpreter (:data:`PEER_UID` is replaced by the uid of
    :attr:`peer`). ``-I`` first: nothing on the import path the daemon's own user can
    write (the working directory, user site-packages under its home, ``PYTHON*``
    variables), so a compromise does not outlive a restart, nor an upgrade that fixed
    it."""
    state_dir: Path
    run_dir: Path
    log_dir: Path
    socket_group: str | None = None
    """The group whose members may reach its socket (the daemon joins it to hand the
    socket over)."""
    socket: Path | None = None
    ready: Literal["answers", "socket", "alive"] = "answers"
    """When a start counts as done: it answers ``GET /v1/status`` on :attr:`socket`, its
    socket exists, or it stayed up a moment."""
    run_group: str | None = None
    """The group of :attr:`run_dir` (setgid, so its socket gets that group too); None:
    :attr:`socket_group`, else its own."""
    peer: str | None = None
    """The only user allowed to talk to it (the host serves the core alone)."""
    requires: tuple[str, ...] = ()
    """Units that must run before it (and stop it when stopped)."""
    restart: Literal["always", "on-failure"] = "on-failure"
    respawn: bool = False
    """Without systemd, kept alive by :mod:`airlock.service.keeper` (Restart=always's
    stand-in)."""

    @property
    def unit_name(self) -> str:
        return f"{self.name}.service"

    @property
    def unit_file(self) -> Path:
        return SYSTEM_UNIT_DIR / self.unit_name

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def directory_group(self) -> str:
        return self.run_group or self.socket_group or self.name

    @property
    def run_dir_mode(self) -> int:
        """0750; setgid (2750) when its files take :attr:`run_group` from the directory."""
        return 0o2750 if self.run_group is not None else 0o750

    def arguments(self, peer_uid: int | None = None) -> list[str]:
        """:attr:`command` with the peer's uid filled in (looked up unless given)."""
        if self.peer is not None and peer_uid is None:
            peer_uid = pwd.getpwnam(self.peer).pw_uid
        return [str(peer_uid) if part == PEER_UID else part for part in self.command]


HOST = Daemon(
    name="airlock-connectors",
    description="Airlock connector host (isolated mode): vault, credentials, connectors",
    command=(
        "-I",
        "-m",
        "airlock.connector_host",
        "--listen",
        str(HOST_SOCKET),
        "--data-dir",
        str(ISOLATED_CONNECTORS_DIR),
        "--allow-uid",
        PEER_UID,
    ),
    state_dir=ISOLATED_CONNECTORS_DIR,
    run_dir=HOST_RUN_DIR,
    log_dir=Path("/var/log/airlock-connectors"),
    socket=HOST_SOCKET,
    ready="socket",
    run_group="airlock",
    peer="airlock",
    restart="always",
    respawn=True,
)

CORE = Daemon(
    name="airlock",
    description="Airlock gateway (isolated mode): approvals, sessions, audit",
    command=("-I", "-m", "airlock", "serve"),
    state_dir=STATE_ROOT,
    run_dir=RUN_DIR,
    log_dir=LOG_DIR,
    socket_group=AGENTS_GROUP,
    socket=RUN_DIR / "airlock.sock",
    requires=(HOST.unit_name,),
)


DAEMONS: tuple[Daemon, ...] = (HOST, CORE)
"""In start order: the host before the core that connects to it."""
