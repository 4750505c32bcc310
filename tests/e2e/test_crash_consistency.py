"""The daemon killed (SIGKILL) at the worst moment, or its state database held by another
process, then started again.

A real daemon (``tests.e2e.host_trial``: ``airlock serve`` plus a connector whose write
adds a line to a file, the "service", and then waits for its answer) on a real socket.
The test kills the daemon once the write has reached the service, before its answer, and
checks what a person relies on after the restart: the log verifies, the write that ran is
in it, and it does not run again.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tests.e2e.daemon_harness import Airlock, leaked_secrets, remember

from airlock.errors import DaemonUnreachable

SLOW_HOST = {"services": {"trial": {"connector": "trial"}}, "connector_host": {"timeout": "60s"}}


def _trial(home: Path) -> Airlock:
    airlock = Airlock(home, overrides=SLOW_HOST)
    airlock.daemon.command = [sys.executable, "-m", "tests.e2e.host_trial"]
    return airlock


def _records(airlock: Airlock) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(airlock.paths.audit_dir.glob("audit*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def _write_session(airlock: Airlock, client: httpx.Client, params: dict[str, Any]) -> str:
    operation = {"service": "trial", "name": "stamp", "params": params}
    created = airlock.request(client, services=["trial"], reason="stamp", operation=operation)
    assert airlock.approve(client, created["code"]).status_code == 200
    state = client.get(
        f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
    ).json()
    assert state["status"] == "approved", state
    return remember(state["session"]["token"])


def _stamp(client: httpx.Client, token: str, params: dict[str, Any]) -> httpx.Response:
    return client.post(
        "/v1/ops/trial/stamp",
        json={"params": params},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_write_cut_off_by_a_daemon_kill_is_in_the_log_and_never_runs_again(
    tmp_path: Path,
) -> None:
    service = tmp_path / "service.txt"
    service.write_text("")  # the host may not create files next to Airlock's folder
    params = {"path": str(service), "seconds": 60}
    airlock = _trial(tmp_path / "home").start()
    try:
        with airlock.client() as agent:
            token = _write_session(airlock, agent, params)
            cut_off: list[BaseException] = []

            def call() -> None:
                try:
                    _stamp(agent, token, params)
                except httpx.HTTPError as exc:
                    cut_off.append(exc)

            caller = threading.Thread(target=call, daemon=True)
            caller.start()
            deadline = time.monotonic() + 30
            while not service.read_text():
                assert time.monotonic() < deadline, "the write never reached the service"
                time.sleep(0.01)
            assert airlock.proc is not None
            airlock.proc.kill()  # the write is done at the service, its answer not back
            airlock.proc.wait()
            caller.join(30)
            assert cut_off, "the call answered although its daemon was killed"
        airlock.start()
        with airlock.client() as agent:
            again = _stamp(agent, token, params)
            assert again.status_code == 403, again.text
            assert again.json()["error"]["code"] == "approval_required"
        assert service.read_text().count("stamped") == 1
        verify = airlock.audit_verify()
        assert verify.returncode == 0, verify.stdout + verify.stderr
        stamps = [
            r
            for r in _records(airlock)
            if r.get("op") == "stamp" and r["event"] in ("operation", "operation_started")
        ]
        assert stamps, "a write that ran left no audit record"
        assert stamps[0]["params"] == params
        assert stamps[0]["approval"]
    finally:
        airlock.stop()
    assert not leaked_secrets(airlock.home)


def test_a_state_database_held_locked_is_a_clear_503_and_a_clear_start_failure(
    tmp_path: Path,
) -> None:
    """Another process holds state.db (``BEGIN EXCLUSIVE`` in a sqlite3 shell): revoking
    everything is refused with a 503 that says so (not a 500 "internal error"), the log
    says the revocation it recorded was not made, and a daemon started meanwhile says
    why it cannot start (not a traceback)."""
    airlock = Airlock(tmp_path / "home").start()
    try:
        with airlock.client() as agent:
            token = airlock.session(agent)["token"]
            holder = sqlite3.connect(airlock.paths.state_db, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                refused = agent.delete("/v1/sessions")
            finally:
                holder.execute("ROLLBACK")
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["code"] == "state_unavailable"
            assert str(airlock.paths.state_db) in error["message"]
            assert "locked" in error["message"]
            assert airlock.op(agent, token, "count_unread").status_code == 200
            events = [r["event"] for r in _records(airlock)]
            revoked = events.index("session_revoked")
            assert events[revoked + 1] == "state_write_failed"
            assert agent.delete("/v1/sessions").status_code == 200
            assert airlock.op(agent, token, "count_unread").status_code == 401
        airlock.stop()

        holder.execute("BEGIN EXCLUSIVE")
        try:
            airlock.start()
            raise AssertionError("the daemon started on a database it cannot write")
        except DaemonUnreachable as exc:
            said = str(exc)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert "Traceback" not in said, said
        assert "state database" in said
        assert "locked" in said
        airlock.start()
        verify = airlock.audit_verify()
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        airlock.stop()
