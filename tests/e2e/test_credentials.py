"""Credentials through the daemon, checked against a real IMAP server (Dovecot)."""

from __future__ import annotations

import json
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
