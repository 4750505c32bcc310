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
