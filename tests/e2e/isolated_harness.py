"""Isolated mode on this machine, for real: system users, /etc/airlock, /var/lib/airlock,
/var/lib/airlock-connectors, /opt/airlock, the core supervised as user ``airlock`` and the
connector host as ``airlock-connectors`` (under its keeper), and test users acting as the
agent, the person and an outsider.

Everything is removed afterwards (``scrub`` even when uninstall itself failed), and the
machine is checked to be as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
from daemon_harness import TotpPhone, as_uid, remember

from airlock.demo.sample_mail import write_sample_maildir
from airlock.service.accounts import group_exists, user_exists

AGENT, PERSON, OUTSIDER = "alk-agent", "alk-person", "alk-outsider"
TEST_USERS = (AGENT, PERSON, OUTSIDER)
HOST_USER = "airlock-connectors"
SERVICE_USERS = ("airlock", HOST_USER)
GROUPS = ("airlock", "airlock-agents", HOST_USER)
LEFT_BEHIND = (
    Path("/etc/airlock"),
    Path("/var/lib/airlock"),
    Path("/var/log/airlock"),
    Path("/run/airlock"),
    Path("/opt/airlock"),
    Path("/etc/systemd/system/airlock.service"),
    Path("/var/lib/airlock-connectors"),
    Path("/var/log/airlock-connectors"),
    Path("/run/airlock-connectors"),
    Path("/etc/systemd/system/airlock-connectors.service"),
)
CLIENT = Path("/opt/airlock/venv/bin/airlock")
SOCKET = Path("/run/airlock/airlock.sock")
HOST_SOCKET = Path("/run/airlock-connectors/host.sock")
HOST_KEEPER_PID = Path("/run/airlock-connectors/airlock-connectors.pid")
ROOT = Path(__file__).resolve().parents[2]


def leftovers() -> list[str]:
    found = [str(p) for p in LEFT_BEHIND if p.exists() or p.is_symlink()]
    found += [f"user {u}" for u in (*SERVICE_USERS, *TEST_USERS) if user_exists(u)]
    found += [f"group {g}" for g in GROUPS if group_exists(g)]
    return found


def as_user(name: str, work: Callable[[], Any]) -> Any:
    """Run *work* in a forked child that has become *name* (its own groups only) and
    return what it returned (JSON); an exception in the child fails here, with its traceback."""
    return json.loads(as_uid(pwd.getpwnam(name).pw_uid, lambda: json.dumps(work()).encode()))


def _clean_env(home: str, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", **extra}


def _as(name: str) -> dict[str, Any]:
    """Popen's arguments that run a program as user *name*, in its home, with a clean
    environment (no AIRLOCK_* variable)."""
    entry = pwd.getpwnam(name)
    return {
        "user": entry.pw_uid,
        "group": entry.pw_gid,
        "extra_groups": os.getgrouplist(name, entry.pw_gid),
        "env": _clean_env(entry.pw_dir),
        "cwd": entry.pw_dir,
        "text": True,
    }


def run_as(
    name: str, *args: str, stdin: str | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """``airlock ARGS`` as user *name*."""
    return subprocess.run(
        [str(CLIENT), *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
        **_as(name),
    )


def spawn_as(name: str, *args: str) -> subprocess.Popen[str]:
    """``airlock ARGS`` as user *name*, started and not waited for (its stdin a pipe)."""
    return subprocess.Popen(
        [str(CLIENT), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **_as(name),
    )


def python_as(name: str, code: str) -> subprocess.CompletedProcess[str]:
    """Python code run by *name* with the installed program (what an agent's tool does)."""
    proc = spawn_python_as(name, code)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def spawn_python_as(name: str, code: str) -> subprocess.Popen[str]:
    """:func:`python_as`, started and not waited for (secrets go to its stdin)."""
    return subprocess.Popen(
        [str(CLIENT.with_name("python")), "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **_as(name),
    )


@dataclass
class Isolated:
    """A root's view of the installed isolated mode."""

    root_config: Path
    """An empty XDG_CONFIG_HOME for root's commands: no personal config of root's counts."""
    mail: Path
    phone: TotpPhone | None = None
    install_output: str = ""
    log: list[str] = field(default_factory=list)

    def root(
        self, *args: str, stdin: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``airlock ARGS`` as root, with the program under test."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "XDG_"))}
        env["XDG_CONFIG_HOME"] = str(self.root_config)
        done = subprocess.run(
            [sys.executable, "-m", "airlock", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
        )
        self.log.append(f"$ airlock {' '.join(args)}\n{done.stdout}{done.stderr}")
        return done

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.root(*args, stdin=stdin)
        assert done.returncode == 0, f"airlock {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def daemon_pid(self) -> int:
        return int(Path("/run/airlock/airlock.pid").read_text())


def make_user(name: str, *, home: bool = True) -> None:
    if user_exists(name):
        raise AssertionError(f"user {name} already exists: a previous run left it behind")
    flags = ["--create-home"] if home else ["--no-create-home"]
    subprocess.run(
        ["useradd", "--system", *flags, "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )


def build_wheels(into: Path) -> Path:
    """The workspace's wheels, as a release would ship them."""
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    subprocess.run(
        [uv, "build", "--all-packages", "--wheel", "--quiet", "-o", str(into)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return into


def enrol_personal(person: str, root_config: Path) -> TotpPhone:
    """Give *person* a personal-mode Airlock (enrolled, audited) to import later."""
    home = pwd.getpwnam(person).pw_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "XDG_"))}
    env.update(HOME=home, AIRLOCK_MODE="personal")
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlock", "totp", "setup"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    uri = proc.stdout.readline().strip()
    secret = remember(pyotp.parse_uri(uri).secret)
    phone = TotpPhone(secret)
    out, err = proc.communicate(phone.code() + "\n", timeout=60)
    assert proc.returncode == 0, out + err
    entry = pwd.getpwnam(person)
    for path in [Path(home), *Path(home).rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return phone


def shared_maildir() -> Path:
    """A Maildir the service user may read (outside any private home or temp directory)."""
    root = Path(tempfile.mkdtemp(prefix="airlock-isolated-mail-", dir="/srv"))
    root.chmod(0o755)
    return write_sample_maildir(root / "Maildir")


STALL_SERVER = """\
import os, sys, time
from mcp.server import MCPServer
from mcp.types import ToolAnnotations

READ = ToolAnnotations(read_only_hint=True)
server = MCPServer("stall")
MARKS = sys.argv[1]


@server.tool(annotations=READ)
def stall(tag: str) -> str:
    \"\"\"Leave a mark, then answer only much later, or end when the host is gone.\"\"\"
    parent = os.getppid()
    with open(os.path.join(MARKS, os.path.basename(tag)), "w") as mark:
        mark.write(str(os.getpid()))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.05)
    return "late"


@server.tool(annotations=READ)
def ping() -> str:
    \"\"\"Answer at once.\"\"\"
    return "pong"


server.run()
"""


def stall_service(root: Path) -> dict[str, Any]:
    """An MCP service whose ``stall`` tool leaves a mark in ``root/marks`` and then hangs:
    a connector busy with an operation, for killing its host mid-operation."""
    marks = root / "marks"
    marks.mkdir(mode=0o755)
    script = root / "stall_server.py"
    script.write_text(STALL_SERVER)
    script.chmod(0o644)
    return {
        "connector": "mcp",
        "command": [str(CLIENT.with_name("python")), str(script), str(marks)],
        "timeout": 100,
    }


def scrub() -> None:
    """Remove whatever an install (or a failed test) left: last resort after uninstall."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(Path("/run/airlock/airlock.pid").read_text())
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError, ValueError):
        os.killpg(int(HOST_KEEPER_PID.read_text()), signal.SIGKILL)  # keeper and host
    for path in LEFT_BEHIND:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    for user in (*TEST_USERS, *SERVICE_USERS):
        if user_exists(user):
            subprocess.run(["userdel", "--remove", user], capture_output=True, check=False)
    for group in (*GROUPS, *TEST_USERS):
        if group_exists(group):
            subprocess.run(["groupdel", group], capture_output=True, check=False)
