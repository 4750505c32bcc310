"""A real Dovecot IMAP server for the IMAP tests and the IMAP benchmark (docs/mail.md).

:func:`start_dovecot` is plain Python (the benchmark uses it without pytest): it writes a
self-contained config under a directory, starts ``dovecot -F`` on loopback with a free
plain port and a free IMAPS port (self-signed EC certificate), and returns a
:class:`DovecotServer` that adds users with seeded Maildirs. Nothing is read from or
written to ``/etc/dovecot``. It runs as root (mail owned by ``nobody``, as Dovecot
refuses uid 0) and as an ordinary user (everything owned by the caller).

The pytest fixtures at the end start one server per test session, however many test
modules import them, and skip when Dovecot is missing, except under CI (``CI=true`` or
``CI=1``) where a missing Dovecot is a failure: CI must never pass by skipping the IMAP
tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient

from airlock.testing import skip_or_fail_under_ci
from tests.certificates import write_self_signed
from tests.mail.mailbox import SeedMessage, maildir_dir_name

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
HOST = "127.0.0.1"
NOBODY = 65534
PR_SET_PDEATHSIG = 1

MailboxState = dict[str, tuple[int, dict[int, frozenset[bytes]]]]
"""folder -> (UIDVALIDITY, uid -> flags)"""


def dovecot_available() -> bool:
    return Path(DOVECOT).exists() and shutil.which("doveadm") is not None


@dataclass(frozen=True)
class MailUser:
    """An account on the test server; the password is a test value, never a real one."""

    username: str
    password: str


@dataclass
class DovecotServer:
    root: Path
    port: int
    tls_port: int
    ca_file: Path
    process: subprocess.Popen[bytes]
    host: str = HOST
    _owner: tuple[int, int] = (NOBODY, NOBODY)
    users: dict[str, MailUser] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    def add_user(
        self,
        username: str,
        password: str,
        messages: Iterable[SeedMessage],
        *,
        folders: Iterable[str] = (),
    ) -> MailUser:
        """Create an account whose Maildir holds *messages* and *folders* (which may be
        empty; the folders of the messages are created as needed).

        Each user has a passwd file of its own (Dovecot would not notice a second line
        added to one file within the same second), so users can be added while it runs:
        each test that writes gets an account of its own and cannot disturb others.
        """
        if username in self.users or not re.fullmatch(r"[a-z0-9.@_-]+", username):
            raise ValueError(f"bad or duplicate test user {username!r}")
        maildir = self.root / "home" / username / "Maildir"
        write_maildir(maildir, messages, folders)
        _chown_tree(maildir.parent, *self._owner)
        passwd = self.root / "users" / f"{username}.passwd"
        passwd.write_text(f"{username}:{{PLAIN}}{password}::::::\n")
        self.users[username] = MailUser(username, password)
        return self.users[username]

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        """Run ``doveadm`` against this server (not the system's)."""
        done = subprocess.run(
            [DOVEADM, "-c", str(self.config), *args],
            input=stdin,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    def kick(self, username: str, *, timeout: float = 10.0) -> None:
        """Drop every connection of *username* server-side (a dropped connection).

        ``doveadm kick`` only signals the user's imap processes; returns once ``doveadm
        who`` lists none of them, so the caller's next command meets a closed connection
        even on a loaded machine.
        """
        self.doveadm("kick", username)
        deadline = time.monotonic() + timeout
        while username in self.doveadm("who", username):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{username}'s connections were still open {timeout} s after kick"
                )
            time.sleep(0.01)

    def observe(self, account: MailUser) -> MailboxState:
        """What a second, independent IMAP client sees: every folder's UIDVALIDITY and
        every message's flags (``\\Recent`` left out: it belongs to a session, not to the
        message). Folders are opened with EXAMINE, so looking changes nothing."""
        state: MailboxState = {}
        with IMAPClient(self.host, self.port, ssl=False, timeout=10) as client:
            client.login(account.username, account.password)
            for flags, _, name in client.list_folders():
                if b"\\Noselect" in flags:
                    continue
                info = client.select_folder(name, readonly=True)
                uids = client.search(["ALL"]) if info[b"EXISTS"] else []
                fetched = client.fetch(uids, ["FLAGS"])
                state[name] = (
                    int(info[b"UIDVALIDITY"]),
                    {
                        uid: frozenset(f for f in d[b"FLAGS"] if f != b"\\Recent")
                        for uid, d in fetched.items()
                    },
                )
        return state

    def files(self, account: MailUser) -> set[str]:
        """The message files of *account*'s Maildir: their names carry the flags."""
        root = self.root / "home" / account.username / "Maildir"
        return {
            str(path.relative_to(root))
            for path in root.rglob("*")
            if path.is_file() and path.parent.name in ("cur", "new")
        }

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGKILL the whole process group: SIGTERM makes Dovecot linger about a second."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def write_maildir(maildir: Path, messages: Iterable[SeedMessage], folders: Iterable[str]) -> None:
    """Write *messages* as Maildir++ files; the file time becomes INTERNALDATE."""
    for name in ("INBOX", *folders):
        _make_folder(maildir, name)
    for n, message in enumerate(messages):
        folder = _make_folder(maildir, message.folder)
        when = message.received.timestamp()
        # Dovecot gives new files UIDs in file name order: names start with the time.
        name = f"{int(when):010d}.M{n:06d}P1.airlock-test,S={len(message.raw)}:2,{message.flags}"
        path = folder / "cur" / name
        path.write_bytes(message.raw)
        os.utime(path, (when, when))


def _make_folder(maildir: Path, name: str) -> Path:
    folder = maildir / maildir_dir_name(name)
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, gid)
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _identity_settings(root: Path) -> tuple[str, tuple[int, int]]:
    """Config lines for who Dovecot runs as, and the owner of the mail files."""
    if os.geteuid() == 0:
        # Dovecot refuses uid 0 for mail: mail belongs to nobody, services to their users.
        lines = """
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
"""
        return lines, (NOBODY, NOBODY)
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    lines = f"""
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 1
"""
    return lines, (os.getuid(), os.getgid())


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = airlock-test-{port}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {host}
{identity}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    special_use = \\Archive
  }}
  mailbox "Sent Messages" {{
    special_use = \\Sent
  }}
  mailbox "Deleted Messages" {{
    special_use = \\Trash
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Drafts {{
    special_use = \\Drafts
  }}
}}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u.passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u.passwd
  default_fields = uid={uid} gid={gid} home={root}/home/%u
}}

service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
    ssl = yes
  }}
  {chroot}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
  {chroot}
}}
"""


def start_dovecot(root: Path) -> DovecotServer:
    """Start a Dovecot whose every file lives under *root*; it has no users yet."""
    if not dovecot_available():
        raise FileNotFoundError(
            f"{DOVECOT} or doveadm is not installed (apt install dovecot-imapd)"
        )
    root.mkdir(parents=True, exist_ok=True)
    # Dovecot's unprivileged processes must reach the mail under root.
    for parent in (root, *root.parents):
        if parent != Path("/"):
            parent.chmod(parent.stat().st_mode | 0o011)
    for sub in ("run", "state", "home", "users"):
        (root / sub).mkdir(exist_ok=True)
    ca_file = write_self_signed(root)
    identity, owner = _identity_settings(root)
    # Without root, the login and anvil processes cannot chroot; without this line every
    # login stalls five seconds.
    chroot = "" if os.geteuid() == 0 else "chroot ="
    port, tls_port = free_port(), free_port()
    (root / "dovecot.conf").write_text(
        CONFIG.format(
            root=root,
            host=HOST,
            port=port,
            tls_port=tls_port,
            identity=identity,
            uid=owner[0],
            gid=owner[1],
            chroot=chroot,
        )
    )
    _chown_tree(root / "home", *owner)
    with (root / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    server = DovecotServer(root, port, tls_port, ca_file, process, _owner=owner)
    try:
        _wait_for_greeting(server)
    except Exception:
        server.stop()
        raise
    return server


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the test process dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait_for_greeting(server: DovecotServer, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with socket.create_connection((server.host, server.port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError as exc:
            last_error = exc
        time.sleep(0.01)
    output = (server.root / "stdout.log").read_text(errors="replace") + server.log()
    raise RuntimeError(f"Dovecot did not start ({last_error}):\n{output[-3000:]}")


# ---------------------------------------------------------------------------- pytest


_SERVER_KEY = pytest.StashKey[DovecotServer]()


def _unavailable(reason: str) -> None:
    """Skip locally; under CI a missing Dovecot must fail the run, not hide it."""
    skip_or_fail_under_ci(reason)


@pytest.fixture(scope="session")
def dovecot(request: pytest.FixtureRequest) -> DovecotServer:
    """One Dovecot for the whole test session, shared by every module that imports this.

    Each importing module gets its own fixture definition; the server itself lives in
    the pytest config's stash, so it is started once and killed when pytest ends.
    """
    config = request.config
    if _SERVER_KEY in config.stash:
        return config.stash[_SERVER_KEY]
    if not dovecot_available():
        _unavailable(f"Dovecot is not installed ({DOVECOT}; apt install dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="airlock-dovecot-"))
    server = start_dovecot(root)
    config.stash[_SERVER_KEY] = server

    def stop() -> None:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    config.add_cleanup(stop)
    return server


@contextlib.contextmanager
def running_dovecot() -> Iterator[DovecotServer]:
    """For scripts (the benchmark): a server in a temporary directory, removed after."""
    root = Path(tempfile.mkdtemp(prefix="airlock-dovecot-"))
    server = start_dovecot(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
