"""systemd units: the hardened system unit of each isolated daemon, the person's user unit,
and what ``systemd-analyze`` says about them.

Both system units (the connector host's and the core's) score ≤ 2.0 by
``systemd-analyze security --offline=true`` (see docs/security.md for the figures and
benchmarks/service_unit.py for the measurement). ``PrivateUsers=`` is deliberately
absent from both: in a private user namespace every other user's uid reads as ``nobody``
through ``SO_PEERCRED``, which would blind the uid checks the core (agents) and the host
(only the core) rest on. Each unit also hides the other daemon's private directories
(``InaccessiblePaths=``), on top of their permissions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airlock.service.layout import CONFIG_DIR, CORE, DAEMONS, STATE_ROOT, Daemon

CORE_NAME = CORE.name

HARDENING = """\
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
PrivateIPC=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
KeyringMode=private
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
DevicePolicy=closed
"""


def _quote(arg: str) -> str:
    """One ExecStart= word (systemd's quoting; % is its specifier character)."""
    arg = arg.replace("%", "%%")
    if re.fullmatch(r"[A-Za-z0-9_./:=@+-]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(argv: Sequence[str]) -> str:
    return " ".join(_quote(a) for a in argv)


def _install_tool() -> str:
    return shutil.which("install") or "/usr/bin/install"


def _hidden_from(daemon: Daemon) -> list[Path]:
    """The other daemons' private directories: not even visible in its mount namespace
    (their permissions already refuse it; this is the second wall)."""
    hidden: list[Path] = []
    for other in DAEMONS:
        if other.name != daemon.name:
            hidden += [other.state_dir, other.log_dir]
    if daemon.name != CORE_NAME:
        hidden.append(CONFIG_DIR)
    return hidden


def system_unit(daemon: Daemon, python: Path, *, peer_uid: int | None = None) -> str:
    """The hardened system unit of *daemon*, run by *python* (*peer_uid*: the uid its
    peer has, looked up when not given)."""
    order = "".join(f"Requires={u}\nAfter={u}\n" for u in daemon.requires)
    groups = f"SupplementaryGroups={daemon.socket_group}\n" if daemon.socket_group else ""
    run_dir = daemon.run_dir
    share_run_dir = ""
    if daemon.run_group is not None:
        # systemd makes the runtime directory NAME:NAME; its socket's readers need it
        # NAME:GROUP with setgid (run as root, before the daemon, outside its sandbox).
        share_run_dir = (
            f"ExecStartPre=+{_install_tool()} -d -o {daemon.name} "
            f"-g {daemon.run_group} -m {daemon.run_dir_mode:o} {run_dir}\n"
        )
    hidden = "InaccessiblePaths=" + " ".join(f"-{p}" for p in _hidden_from(daemon)) + "\n"
    config = f"ReadOnlyPaths={CONFIG_DIR}\n" if daemon.name == CORE_NAME else ""
    # The host only dials out (IMAP, HTTPS): it may not listen on any IP port.
    no_listen = "SocketBindDeny=any\n" if daemon.peer is not None else ""
    logs = (
        f"LogsDirectory={daemon.log_dir.name}\nLogsDirectoryMode=0700\n"
        if daemon.name == CORE_NAME
        else ""
    )
    return (
        "[Unit]\n"
        f"Description={daemon.description}\n"
        f"{order}"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n[Service]\n"
        "Type=simple\n"
        f"User={daemon.name}\n"
        f"Group={daemon.name}\n"
        f"{groups}"
        "Environment=AIRLOCK_MODE=isolated\n"
        f"{share_run_dir}"
        f"ExecStart={exec_line([str(python), *daemon.arguments(peer_uid)])}\n"
        + ("ExecReload=/bin/kill -HUP $MAINPID\n" if daemon.name == CORE_NAME else "")
        + f"Restart={daemon.restart}\n"
        "RestartSec=2\n"
        f"RuntimeDirectory={run_dir.name}\n"
        "RuntimeDirectoryMode=0750\n"
        "RuntimeDirectoryPreserve=restart\n"
        f"StateDirectory={daemon.state_dir.relative_to(STATE_ROOT.parent)}\n"
        "StateDirectoryMode=0700\n"
        f"{logs}"
        f"{config}"
        f"{hidden}"
        f"{no_listen}"
        f"{HARDENING}"
        "\n[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def user_unit(argv: Sequence[str], environment: dict[str, str]) -> str:
    """The person's user unit (personal mode): the same daemon, as the person."""
    env = "".join(f"Environment={_quote(f'{k}={v}')}\n" for k, v in sorted(environment.items()))
    return (
        "[Unit]\n"
        "Description=Airlock gateway (personal mode)\n"
        "\n[Service]\n"
        "Type=simple\n"
        f"{env}"
        f"ExecStart={exec_line(argv)}\n"
        "ExecReload=/bin/kill -HUP $MAINPID\n"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        "UMask=0077\n"
        "NoNewPrivileges=yes\n"
        "LockPersonality=yes\n"
        "RestrictRealtime=yes\n"
        "SystemCallArchitectures=native\n"
        "\n[Install]\n"
        "WantedBy=default.target\n"
    )


def systemd_is_pid1() -> bool:
    """Whether systemd runs this machine (its own test: ``sd_booted()``)."""
    return Path("/run/systemd/system").is_dir()


def systemctl(*args: str, user: bool = False) -> subprocess.CompletedProcess[str]:
    command = ["systemctl", *(["--user"] if user else []), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


@dataclass(frozen=True)
class UnitCheck:
    verify_messages: list[str]
    """What ``systemd-analyze verify`` printed (nothing for a clean unit)."""
    exposure: float
    """``systemd-analyze security --offline=true``: 0 best … 10 worst."""


def analyze(unit_file: Path) -> UnitCheck:
    """Run ``systemd-analyze verify`` and ``security --offline=true`` on *unit_file*."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        from airlock.errors import AirlockError

        raise AirlockError("systemd-analyze is not installed", hint="apt install systemd")
    env = {**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""}
    verify = subprocess.run(
        [tool, "verify", str(unit_file)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    messages = [line for line in (verify.stdout + verify.stderr).splitlines() if line.strip()]
    security = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit_file)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", security.stdout)
    if found is None:
        from airlock.errors import AirlockError

        raise AirlockError(f"systemd-analyze security gave no exposure level: {security.stderr}")
    return UnitCheck(messages, float(found.group(1)))
