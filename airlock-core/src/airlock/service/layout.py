"""Where isolated mode lives, and the daemons it runs.

One :class:`Daemon` per background process with its own system user. Adding the
connector host later is one more entry in :data:`DAEMONS` (its user, state directory
and command); accounts, units, the supervisor and uninstall loop over the tuple.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from airlock.settings.paths import ISOLATED_CONFIG_DIR, ISOLATED_DATA_DIR, ISOLATED_RUN_DIR

AGENTS_GROUP = "airlock-agents"
"""Members may connect to the daemon's socket: the agents' users and the person's."""

CONFIG_DIR = ISOLATED_CONFIG_DIR
STATE_ROOT = ISOLATED_DATA_DIR
RUN_DIR = ISOLATED_RUN_DIR
LOG_DIR = Path("/var/log/airlock")
PROGRAM_DIR = Path("/opt/airlock")
VENV_DIR = PROGRAM_DIR / "venv"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")


@dataclass(frozen=True)
class Daemon:
    name: str
    """Its system user, its primary group and its unit (``NAME.service``)."""
    description: str
    command: tuple[str, ...]
    """The arguments after the interpreter."""
    state_dir: Path
    socket_group: str | None = None
    """The group whose members may reach its socket (the daemon joins it to hand the
    socket over)."""
    socket: Path | None = None
    """Where it answers ``GET /v1/status`` once ready (None: being alive is enough)."""

    @property
    def unit_name(self) -> str:
        return f"{self.name}.service"

    @property
    def unit_file(self) -> Path:
        return SYSTEM_UNIT_DIR / self.unit_name

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return LOG_DIR / f"{self.name}.log"


CORE = Daemon(
    name="airlock",
    description="Airlock gateway (isolated mode): approvals, sessions, audit",
    command=("-m", "airlock", "serve"),
    state_dir=STATE_ROOT,
    socket_group=AGENTS_GROUP,
    socket=RUN_DIR / "airlock.sock",
)

DAEMONS: tuple[Daemon, ...] = (CORE,)
