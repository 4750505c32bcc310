"""Where Airlock keeps its config, data and socket (see docs/api.md).

* ``AIRLOCK_HOME=DIR``: everything under DIR (tests, the demo, several instances).
* personal mode (default): XDG config, data and runtime directories of the user.
* isolated mode (``AIRLOCK_MODE=isolated``, or an ``/etc/airlock/config.yaml`` with no
  personal config): ``/etc/airlock``, ``/var/lib/airlock``, ``/run/airlock``.

``AIRLOCK_SOCKET=PATH`` points a client at another socket.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from airlock.common.files import ensure_private_dir


class Mode(StrEnum):
    PERSONAL = "personal"
    ISOLATED = "isolated"


ISOLATED_CONFIG_DIR = Path("/etc/airlock")
ISOLATED_DATA_DIR = Path("/var/lib/airlock")
ISOLATED_RUN_DIR = Path("/run/airlock")
ISOLATED_CONNECTORS_DIR = Path("/var/lib/airlock-connectors")
"""The connector host's own state in isolated mode (its vault and vault key), owned by
the ``airlock-connectors`` user; the core's user cannot read it."""


@dataclass(frozen=True)
class AirlockPaths:
    mode: Mode
    config_file: Path
    data_dir: Path
    run_dir: Path
    socket: Path
    cache_dir: Path
    """The CLI's own cache (session tokens of ``airlock run``), private to the user."""

    def config_exists(self) -> bool:
        """Whether the config file exists (one we may not read counts: it is the daemon's)."""
        try:
            return self.config_file.exists()
        except PermissionError:
            return True

    @property
    def vault_file(self) -> Path:
        return self.data_dir / "secrets.enc"

    @property
    def totp_file(self) -> Path:
        return self.data_dir / "totp.key"

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.db"

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @property
    def audit_key_file(self) -> Path:
        return self.data_dir / "audit.key"

    @property
    def connectors_dir(self) -> Path:
        """The connector host's state: the service credentials' vault and its key."""
        if self.mode is Mode.ISOLATED and self.data_dir == ISOLATED_DATA_DIR:
            return ISOLATED_CONNECTORS_DIR
        return self.data_dir / "connectors"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "daemon.lock"

    def ensure_data_dirs(self) -> None:
        """Create the data directories 0700 and the run directory (what commands need).

        In isolated mode the socket's group must reach the socket, so the run directory
        is 0750; it holds nothing but the socket (0660).
        """
        ensure_private_dir(self.data_dir)
        ensure_private_dir(self.audit_dir)
        if self.mode is Mode.ISOLATED:
            self.run_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
            self.run_dir.chmod(0o750)
        else:
            ensure_private_dir(self.run_dir)


def _xdg(env: Mapping[str, str], name: str, default: str) -> Path:
    value = env.get(name)
    home = Path(env.get("HOME") or Path.home())
    return Path(value) if value else home / default


def _mode(env: Mapping[str, str]) -> Mode:
    explicit = env.get("AIRLOCK_MODE")
    if explicit:
        try:
            return Mode(explicit.lower())
        except ValueError:
            from airlock.errors import ConfigError

            raise ConfigError(
                f"AIRLOCK_MODE={explicit!r} is not a mode", hint="use personal or isolated"
            ) from None
    if "AIRLOCK_HOME" in env:
        return Mode.PERSONAL
    personal = _xdg(env, "XDG_CONFIG_HOME", ".config") / "airlock" / "config.yaml"
    if _isolated_installed() and not personal.exists():
        return Mode.ISOLATED
    return Mode.PERSONAL


def _isolated_installed() -> bool:
    """``/etc/airlock/config.yaml`` exists. Agents may not look inside /etc/airlock (0750):
    for them, that private directory existing is the sign."""
    try:
        return (ISOLATED_CONFIG_DIR / "config.yaml").exists()
    except PermissionError:
        return True


def resolve_paths(env: Mapping[str, str] | None = None) -> AirlockPaths:
    """The paths for this process, from its environment."""
    env = os.environ if env is None else env
    mode = _mode(env)
    home = env.get("AIRLOCK_HOME")
    if home:
        root = Path(home).expanduser().absolute()
        config_file, data_dir, run_dir = root / "config.yaml", root / "data", root / "run"
    elif mode is Mode.ISOLATED:
        config_file = ISOLATED_CONFIG_DIR / "config.yaml"
        data_dir, run_dir = ISOLATED_DATA_DIR, ISOLATED_RUN_DIR
    else:
        config_file = _xdg(env, "XDG_CONFIG_HOME", ".config") / "airlock" / "config.yaml"
        data_dir = _xdg(env, "XDG_DATA_HOME", ".local/share") / "airlock"
        runtime = env.get("XDG_RUNTIME_DIR")
        run_dir = Path(runtime) / "airlock" if runtime else data_dir / "run"
    socket = Path(env["AIRLOCK_SOCKET"]) if env.get("AIRLOCK_SOCKET") else run_dir / "airlock.sock"
    cache = (
        Path(home).expanduser().absolute() / "cache"
        if home
        else _xdg(env, "XDG_CACHE_HOME", ".cache") / "airlock"
    )
    return AirlockPaths(mode, config_file, data_dir, run_dir, socket, cache)
