"""The audit log as a real daemon keeps it: a listing (``GET /v1/audit``) that takes long
(a year of log scanned for a service that matches nothing) must not stop the daemon
answering everyone else; a log whose key is gone is not given a new one."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
from daemon_harness import Airlock


def _blocked_opening_a_fifo(pid: int) -> bool:
    """Whether a thread of *pid* waits in ``open`` for a FIFO's writer (the kernel says)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "wchan").read_text() == "wait_for_partner":
                return True
        except OSError:
            continue
    return False


def test_a_slow_audit_listing_does_not_stop_the_daemon(airlock: Airlock) -> None:
    assert airlock.proc is not None
    # A rotated file the listing must read first and that answers only when written to:
    # the listing stays inside its read for as long as the test wants.
    fifo = airlock.paths.audit_dir / "audit-20000101T000000.000Z-000000000000.jsonl"
    os.mkfifo(fifo, 0o600)
    answers: list[httpx.Response] = []

    def listing() -> None:
        with airlock.client() as client:
            answers.append(client.get("/v1/audit", params={"service": "nothing"}))

    reader = threading.Thread(target=listing)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not _blocked_opening_a_fifo(airlock.proc.pid):
            assert time.monotonic() < deadline, "the listing never reached the file"
            time.sleep(0.01)
        with httpx.Client(
            transport=httpx.HTTPTransport(uds=str(airlock.paths.socket)),
            base_url="http://airlock",
            timeout=10,
        ) as other:
            status = other.get("/v1/status")
        assert status.status_code == 200, "the daemon answers while a listing reads"
    finally:
        os.close(os.open(fifo, os.O_WRONLY))  # let the listing finish
        reader.join()
        fifo.unlink()
    assert answers[0].status_code == 200, answers[0].text


def test_a_daemon_whose_audit_key_is_gone_does_not_start_with_a_new_one(
    airlock: Airlock,
) -> None:
    airlock.stop()
    key = airlock.paths.audit_key_file
    key.unlink()
    started = airlock.cli("serve")
    assert started.returncode != 0
    assert "no audit key" in started.stderr, started.stderr
    assert "Traceback" not in started.stderr
    assert not key.exists(), "no new key: the records stay checkable once it is restored"


def test_lines_planted_in_the_log_do_not_hide_it_from_the_person(airlock: Airlock) -> None:
    """Whoever can write the audit files (an agent running as you, in personal mode) adds
    lines Airlock never writes: a record nested 300 deep (JSON output stops at ~250: a
    500 and no listing) and one without a sequence number. `airlock audit` and
    ``GET /v1/audit`` still list the real records; `audit verify` names the tampering."""
    with airlock.client() as agent:
        airlock.session(agent, ttl="61m")
    current = airlock.paths.audit_dir / "audit.jsonl"
    with current.open("ab") as log:
        log.write(b'{"seq":99,"ts":"2099-01-01T00:00:00Z","x":' + b"[" * 300 + b"]" * 300 + b"}\n")
        log.write(b'{"event":"planted","ts":"2099-01-01T00:00:00Z"}\n')
    with airlock.client() as person:
        listed = person.get("/v1/audit", params={"newest": "true", "limit": 50})
    assert listed.status_code == 200, listed.text
    events = [record["event"] for record in listed.json()["events"]]
    assert "session_issued" in events
    assert "planted" not in events
    shown = airlock.cli("audit")
    assert shown.returncode == 0, shown.stderr
    assert "session_issued" in shown.stdout
    assert airlock.audit_verify().returncode != 0
