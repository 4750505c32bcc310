"""A real Airlock daemon process on a real socket in a temporary AIRLOCK_HOME."""

from __future__ import annotations

import fcntl
import os
import pwd
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import yaml

from airlock.clients.local_daemon import LocalDaemon
from airlock.demo.phone import SimulatedPhone
from airlock.demo.sample_mail import write_sample_maildir
from airlock.security.totp import save_secret

PLANTED_SECRETS: set[str] = set()
"""Every secret value the end-to-end tests create; none may show up in a log or audit line."""


def remember(secret: str) -> str:
    PLANTED_SECRETS.add(secret)
    return secret


def leaked_secrets(home: Path) -> list[str]:
    """Planted secrets found in *home*'s daemon logs and audit files (shortened)."""
    files = [*home.rglob("*.log"), *home.rglob("audit*.jsonl")]
    assert files, f"no daemon log or audit file under {home}: the layout changed"
    return [
        f"{path}: {secret[:6]}..."
        for path in files
        for secret in PLANTED_SECRETS
        if secret in path.read_text(encoding="utf-8", errors="replace")
    ]


OTHER_USER = "airlock-e2e"
"""A second real user (system, no home, no shell), created once and kept for later runs."""


def needs_root(why: str = "needs root to create and switch to real users") -> None:
    """Skip locally without root; under CI a missing root fails the run, never skips it."""
    from airlock.testing import skip_or_fail_under_ci

    if os.geteuid() != 0:
        skip_or_fail_under_ci(why)


def needs_landlock() -> None:
    """Skip locally on a kernel without Landlock (before Linux 5.13, or switched off);
    under CI it fails the run: there, servers and the host would run unconfined."""
    from airlock.common.landlock import abi_version
    from airlock.testing import skip_or_fail_under_ci

    if abi_version() <= 0:
        skip_or_fail_under_ci("this kernel has no Landlock (Linux 5.13+)")


@contextmanager
def small_audit_disk(airlock: Airlock) -> Iterator[Path]:
    """*airlock*'s audit folder on a 512 KiB tmpfs of its own, for a test to fill with
    :func:`fill_disk` (root only); unmounted afterwards."""
    needs_root("needs root to mount a small tmpfs over the audit directory")
    audit_dir = airlock.paths.audit_dir
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(audit_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        needs_root(f"needs root and mount permission ({mounted.stderr.strip()})")
    try:
        yield audit_dir
    finally:
        subprocess.run(["umount", "-l", str(audit_dir)], check=False)


def fill_disk(folder: Path) -> Path:
    """Fill *folder*'s file system; the file that did it, to delete to make room."""
    import errno

    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    error = 0
    try:
        while not error:
            try:
                os.write(fd, b"\0" * 512)
            except OSError as exc:
                error = exc.errno or -1
    finally:
        os.close(fd)
    assert error == errno.ENOSPC
    return filler


def fill_right_after_rotation(
    airlock: Airlock,
    agent: httpx.Client,
    token: str,
    fill: Callable[[], None],
    empty: Callable[[], None],
) -> None:
    """Fill *airlock*'s audit disk (see :func:`small_audit_disk`) just after
    ``audit.jsonl`` rotated, so that the next record needs a page the disk no longer has.
    A record written in the background meanwhile (a prompt's ``approval_sent`` comes once
    its channel has sent it) starts the new file on a page with room left: then room is
    made, a call writes on, and it is tried again."""
    current = airlock.paths.audit_dir / "audit.jsonl"
    for _ in range(100):
        if not current.exists():
            fill()
            if not current.exists():
                return
            empty()
        assert airlock.op(agent, token, "count_unread").status_code == 200
    raise AssertionError("audit.jsonl never rotated")


def kill_once_reached(airlock: Airlock, reached: Callable[[], object], what: str) -> None:
    """SIGKILL *airlock*'s daemon as soon as *reached* is true (within 30 s), mid-call."""
    deadline = time.monotonic() + 30
    while not reached():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.01)
    assert airlock.proc is not None
    airlock.proc.kill()
    airlock.proc.wait()


def killed_after_record(airlock: Airlock, call: Callable[[], object], event: str) -> None:
    """Run *call* (a revoke) while the state database is held; SIGKILL the daemon once
    the *event* record is on disk, its database write still waiting for the lock."""
    needle = f'"event":"{event}"'.encode()
    holder = sqlite3.connect(airlock.paths.state_db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    answers: list[object] = []

    def revoke() -> None:
        try:
            answers.append(call())
        except httpx.HTTPError as exc:
            answers.append(exc)

    caller = threading.Thread(target=revoke, daemon=True)
    try:
        caller.start()
        current = airlock.paths.audit_dir / "audit.jsonl"
        kill_once_reached(airlock, lambda: needle in current.read_bytes(), f"the {event} record")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    caller.join(30)
    assert answers, "the revoke's call never ended"
    assert isinstance(answers[0], httpx.HTTPError), answers  # never answered


def exchange(address: Path | tuple[str, int], request: bytes) -> bytes:
    """Send *request* on a new connection (to the Unix socket at *address*, or to a TCP
    host and port) and return all the other end sends until it closes."""
    if isinstance(address, Path):
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(str(address))
    else:
        conn = socket.create_connection(address)
    with conn:
        conn.sendall(request)
        return b"".join(iter(lambda: conn.recv(65536), b""))


def as_uid(uid: int, work: Callable[[], bytes]) -> bytes:
    """What *work* returns, run in a forked child that has become *uid* (with the user's
    own groups; a uid without a passwd entry gets the group of its number and no others).
    An exception in the child fails the caller, with the child's traceback (root only)."""
    try:
        user = pwd.getpwuid(uid)
        gid, groups = user.pw_gid, os.getgrouplist(user.pw_name, user.pw_gid)
    except KeyError:
        gid, groups = uid, []
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            with open(write_end, "wb") as pipe:
                try:
                    os.setgroups(groups)
                    os.setgid(gid)
                    os.setuid(uid)
                    answer = b"ok\n" + work()
                except BaseException:
                    answer = b"failed\n" + traceback.format_exc().encode()
                pipe.write(answer)
        finally:
            os._exit(0)
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    outcome, _, payload = answer.partition(b"\n")
    if outcome != b"ok":
        told = payload.decode(errors="replace") or f"no answer (wait status {status})"
        raise AssertionError(f"the child as uid {uid} failed: {told}")
    return payload


MACHINE_LOCK = Path(tempfile.gettempdir()) / "airlock-e2e-machine.lock"


@contextmanager
def machine_lock() -> Iterator[None]:
    """Held while a test uses what exists once per machine (the isolated-mode install,
    /opt/airlock): ``uv run nox`` runs the end-to-end tests on two workers."""
    with MACHINE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            merged(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


TotpPhone = SimulatedPhone  # the name the notifier tests import


def run_airlock(
    env: dict[str, str], *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``airlock ARGS...`` in a subprocess with *env*, as a person or script runs it."""
    return subprocess.run(
        [sys.executable, "-m", "airlock", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=cwd,
    )


@dataclass
class Airlock:
    home: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    phone: TotpPhone = field(init=False)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.maildir = write_sample_maildir(self.home / "Maildir")
        base = {
            "services": {"mail": {"connector": "maildir", "path": str(self.maildir)}},
            "approvals": {"notifiers": ["console"]},
            # Tests run daemons side by side: a fixed port would be a race between them.
            "dashboard": {"listen": "off"},
        }
        config = merged(base, self.overrides)
        (self.home / "config.yaml").write_text(yaml.safe_dump(config))
        self.daemon = LocalDaemon(self.home)
        self.paths = self.daemon.paths
        self.paths.ensure_data_dirs()
        secret = remember(pyotp.random_base32())
        save_secret(self.paths.totp_file, secret)
        self.phone = TotpPhone(secret)

    @property
    def env(self) -> dict[str, str]:
        return self.daemon.env

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.daemon.proc

    def start(self) -> Airlock:
        self.daemon.start()
        return self

    def stored_bytes(self) -> bytes:
        """Every file of the data directory (both vaults, the connector host's key too)."""
        return b"".join(
            p.read_bytes() for p in sorted(self.paths.data_dir.rglob("*")) if p.is_file()
        )

    def host_vault(self) -> dict[str, dict[str, str]]:
        """The connector host's vault, opened with its key (where service credentials live)."""
        from airlock.connector_host.keys import HostKeys
        from airlock.security.vault import Vault

        keys = HostKeys(self.paths.connectors_dir)
        vault = Vault(keys.vault_file, keys.load())
        return {name: vault.get(name) for name in vault.services()}

    def stop(self) -> int:
        return self.daemon.stop()

    def restart(self) -> Airlock:
        self.stop()
        return self.start()

    def client(self, **headers: str) -> httpx.Client:
        transport = httpx.HTTPTransport(uds=str(self.paths.socket))
        return httpx.Client(
            transport=transport, base_url="http://airlock", headers=headers, timeout=70
        )

    # -- the flows every test needs ------------------------------------------------------

    def request(self, client: httpx.Client, **body: Any) -> dict[str, Any]:
        body.setdefault("services", ["mail"])
        body.setdefault("reason", "summarise my inbox")
        response = client.post("/v1/requests", json=body)
        assert response.status_code == 202, response.text
        created: dict[str, Any] = response.json()
        remember(created["claim"])
        return created

    def approve(self, client: httpx.Client, ref: str) -> httpx.Response:
        return client.post(f"/v1/requests/{ref}/approve", json={"totp": self.phone.code()})

    def session(self, client: httpx.Client, **body: Any) -> dict[str, Any]:
        """Request, approve and collect: the token of a fresh session."""
        created = self.request(client, **body)
        assert self.approve(client, created["code"]).status_code == 200
        state = client.get(
            f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
        ).json()
        assert state["status"] == "approved", state
        session: dict[str, Any] = state["session"]
        remember(session["token"])
        return session

    def op(self, client: httpx.Client, token: str, operation: str, **params: Any) -> httpx.Response:
        return client.post(
            f"/v1/ops/mail/{operation}",
            json={"params": params},
            headers={"Authorization": f"Bearer {token}"},
        )

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`airlock ARGS...` as a person or script runs it against this daemon."""
        return run_airlock(self.env, *args, stdin=stdin)

    def audit_verify(self) -> subprocess.CompletedProcess[str]:
        return self.cli("audit", "verify", "--json")


# -- a daemon on a clock the test moves (clocked_serve.py) -------------------------------

CLOCKED_SERVE = [sys.executable, str(Path(__file__).with_name("clocked_serve.py"))]


def clock_offset(home: Path) -> float:
    """How far the test has moved the clock of the daemon in *home*, in seconds."""
    try:
        return float((home / "clock-offset").read_text() or 0)
    except FileNotFoundError:
        return 0.0


def advance(airlock: Airlock, seconds: float) -> None:
    """Move the daemon's clock (and the phone's) forward."""
    (airlock.home / "clock-offset").write_text(str(clock_offset(airlock.home) + seconds))


def clocked(airlock: Airlock) -> Airlock:
    """*airlock*, not started yet, set to run its daemon and its phone on the moved clock."""
    airlock.daemon.command = list(CLOCKED_SERVE)
    home = airlock.home
    airlock.phone.now = lambda: time.time() + clock_offset(home)
    return airlock
