"""Credentials through the daemon, checked against a real IMAP server (Dovecot)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable

from daemon_harness import Airlock, remember
from tests.mail.dovecot import DovecotServer, dovecot
from tests.mail.mailbox import generated_mail

__all__ = ["dovecot"]  # the session fixture, shared with the mail tests

PASSWORD = remember("e2e-imap-pass-7Qx")  # a test value on a throwaway server


def imap_airlock(
    start_airlock: Callable[..., Airlock], dovecot: DovecotServer, username: str
) -> Airlock:
    dovecot.add_user(username, PASSWORD, generated_mail(12))
    service = {
        "connector": "imap",
        "host": "127.0.0.1",
        "port": dovecot.port,
        "security": "none",
        "username": username,
    }
    return start_airlock({"services": {"work": service}})


def test_credentials_are_checked_stored_encrypted_and_used(
    start_airlock: Callable[..., Airlock], dovecot: DovecotServer
) -> None:
    airlock = imap_airlock(start_airlock, dovecot, "e2e-creds@example.test")
    added = airlock.cli(
        "credentials", "add", "work", stdin=f"{airlock.phone.code()}\npassword={PASSWORD}\n"
    )
    assert added.returncode == 0, added.stderr
    assert "connected: 12 messages" in added.stdout
    assert PASSWORD.encode() not in airlock.stored_bytes()
    assert airlock.host_vault()["work"] == {"password": PASSWORD}, "kept by the connector host"
    listing = json.loads(airlock.cli("credentials", "list", "--json").stdout)
    assert {"service": "work", "stored": True} in listing

    with airlock.client() as agent:
        token = airlock.session(agent, services=["work"])["token"]
        listed = agent.post(
            "/v1/ops/work/list_messages",
            json={"params": {"limit": 5}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["result"]["messages"]) == 5

    removed = airlock.cli("credentials", "remove", "work", stdin=airlock.phone.code() + "\n")
    assert removed.returncode == 0, removed.stderr
    listing = json.loads(airlock.cli("credentials", "list", "--json").stdout)
    assert {"service": "work", "stored": False} in listing
    everything = airlock.paths.audit_dir / "audit.jsonl"
    assert PASSWORD not in everything.read_text()
    assert PASSWORD not in airlock.daemon.log.read_text()


def test_a_wrong_password_is_refused_and_nothing_is_saved(
    start_airlock: Callable[..., Airlock], dovecot: DovecotServer
) -> None:
    airlock = imap_airlock(start_airlock, dovecot, "e2e-wrong@example.test")
    wrong = airlock.cli(
        "credentials", "add", "work", stdin=f"{airlock.phone.code()}\npassword=not-it\n"
    )
    assert wrong.returncode == 1
    assert "error:" in wrong.stderr
    assert "not-it" not in wrong.stderr
    assert json.loads(airlock.cli("credentials", "list", "--json").stdout) == [
        {"service": "work", "stored": False}
    ]
    added = airlock.cli(
        "credentials", "add", "work", stdin=f"{airlock.phone.code()}\npassword={PASSWORD}\n"
    )
    assert added.returncode == 0, added.stderr
    shown = airlock.cli("credentials", "get", "work", "password", stdin=airlock.phone.code() + "\n")
    assert shown.stdout.strip() == PASSWORD
    log = (airlock.paths.audit_dir / "audit.jsonl").read_text()
    assert '"event":"credentials_read"' in log
    assert PASSWORD not in log


class RefusingImap:
    """A TCP front for Dovecot that, once ``refuse`` is set, is a hostile IMAP server of
    its own: every LOGIN is refused with text meant for the person's terminal."""

    TEXT = "[AUTHENTICATIONFAILED] \x1b]0;owned\x07\x1b[2J\u009b31m\u202egnp.exe"

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.refuse = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            serve = self._refusing if self.refuse else self._relay
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)

    def _refusing(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 LOGIN] hostile ready\r\n")
            for line in lines:
                tag, _, rest = line.decode("ascii", "replace").partition(" ")
                command = rest.split(" ", 1)[0].strip().upper()
                if command == "CAPABILITY":
                    conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag.encode() + b" OK done\r\n")
                elif command == "LOGIN":
                    conn.sendall(f"{tag} NO {self.TEXT}\r\n".encode())
                elif command == "LOGOUT":
                    conn.sendall(b"* BYE\r\n" + tag.encode() + b" OK bye\r\n")
                    return
                else:
                    conn.sendall(tag.encode() + b" BAD no\r\n")

    def close(self) -> None:
        self.listener.close()


def test_a_mail_servers_refusal_cannot_drive_the_persons_terminal(
    start_airlock: Callable[..., Airlock], dovecot: DovecotServer
) -> None:
    """What a hostile IMAP server says when it refuses the login is kept as the service's
    problem; `airlock status` shows it with no escape sequence, C1 code or bidi override."""
    dovecot.add_user("e2e-hostile@example.test", PASSWORD, generated_mail(3))
    front = RefusingImap(dovecot.port)
    service = {
        "connector": "imap",
        "host": "127.0.0.1",
        "port": front.port,
        "security": "none",
        "username": "e2e-hostile@example.test",
    }
    try:
        airlock = start_airlock({"services": {"work": service}})
        added = airlock.cli(
            "credentials", "add", "work", stdin=f"{airlock.phone.code()}\npassword={PASSWORD}\n"
        )
        assert added.returncode == 0, added.stderr
        front.refuse = True
        with airlock.client() as agent:
            token = airlock.session(agent, services=["work"])["token"]
            refused = agent.post(
                "/v1/ops/work/list_messages",
                json={"params": {"limit": 5}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert refused.status_code == 502, refused.text
        facts = json.loads(airlock.cli("status", "--json").stdout)
        health = next(h for h in facts["daemon"]["service_health"] if h["name"] == "work")
        assert "\x1b]0;owned" in health["detail"], "the JSON keeps what the server said"
        shown = airlock.cli("status")
    finally:
        front.close()
    assert "UNHEALTHY" in shown.stdout
    assert "AUTHENTICATIONFAILED" in shown.stdout
    for control in ("\x1b", "\x07", "\u009b", "\u202e"):
        assert control not in shown.stdout
