"""The daemon killed (SIGKILL) at the worst moment, or its state database held by another
process, then started again.

A real daemon (``tests.e2e.host_trial``: ``airlock serve`` plus a connector whose write
adds a line to a file, the "service", and then waits for its answer) on a real socket.
The test kills the daemon once the write has reached the service, before its answer, and
checks what a person relies on after the restart: the log verifies, the write that ran is
in it, and it does not run again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.daemon_harness import (
    Airlock,
    fill_disk,
    kill_once_reached,
    leaked_secrets,
    remember,
    small_audit_disk,
)
from tests.e2e.dashboard_support import Browser, dashboard_url
from tests.e2e.llm_harness import budget_of, spend_session
from tests.openrouter.openrouter_server import OpenRouterServer

from airlock.errors import DaemonUnreachable
from airlock.security.vault import TotpKey, Vault

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
            # Killed when the write is done at the service, its answer not back.
            kill_once_reached(airlock, service.read_text, "the write reaching the service")
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
    everything is answered with a 503 that says so (not a 500 "internal error") and that
    the session is refused already, as it is (its record is on disk), the log says the
    database write failed, and a daemon started meanwhile says why it cannot start (not
    a traceback)."""
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
            assert "refused already" in error["message"]
            # Its record is on disk: refused now, not at the next start.
            assert airlock.op(agent, token, "count_unread").status_code == 401
            events = [r["event"] for r in _records(airlock)]
            revoked = events.index("session_revoked")
            assert events[revoked + 1] == "state_write_failed"
            assert agent.delete("/v1/sessions").json()["revoked"] == []  # nothing left
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


def test_a_spend_call_cut_off_is_counted_only_once_its_record_is_on_disk(
    tmp_path: Path,
) -> None:
    """The daemon is killed while the service answers a spend call; it starts again on an
    audit disk with room for its ``daemon_started`` record and no more. The call's cost
    must not be counted (and forgotten by the next start) without a record of it."""
    openrouter = OpenRouterServer()
    remember(openrouter.key)
    llm = {"connector": "openrouter", "api_base": openrouter.url, "models": ["test/*"]}
    airlock = Airlock(tmp_path / "home", overrides={"services": {"llm": {**llm, "max_usd": 1}}})
    Vault(airlock.paths.vault_file, TotpKey(airlock.phone.secret)).set(
        "llm", {"api_key": openrouter.key}
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(openrouter.close)
        audit_dir = cleanup.enter_context(small_audit_disk(airlock))
        cleanup.callback(airlock.stop)
        airlock.start()
        current = audit_dir / "audit.jsonl"
        started = next(r for r in _lines(current) if b'"daemon_started"' in r)
        with airlock.client() as agent:
            token = spend_session(airlock, agent, 0.05)
            # The next start's daemon_started record fits in the last page of the log,
            # and the cut-off call's record (200 bytes or more) does not.
            while not len(started) + 16 < PAGE - current.stat().st_size % PAGE < len(started) + 150:
                listed = agent.post(
                    "/v1/ops/llm/list_models",
                    json={"params": {}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert listed.status_code == 200, listed.text
            openrouter.held = threading.Event()  # the model is writing its answer
            answers: list[object] = []
            params = {"model": "test/flat", "messages": [{"role": "user", "content": "hi"}]}
            caller = threading.Thread(
                target=lambda: answers.append(_spend(agent, token, {**params, "max_tokens": 1000})),
                daemon=True,
            )
            caller.start()
            kill_once_reached(airlock, openrouter.spending_calls, "the call reaching the service")
            openrouter.held.set()  # the service finishes the answer, and bills it
            caller.join(30)
        filler = fill_disk(audit_dir)
        try:
            with pytest.raises(DaemonUnreachable, match="No space left on device"):
                airlock.start()  # no room for the cut-off call's record
        finally:
            filler.unlink()
        airlock.start()
        with airlock.client() as agent:
            budget = budget_of(agent)
        settled = [r for r in _records(airlock) if r["event"] == "budget_settled_at_reservation"]
        assert [r["cost_usd"] for r in settled] == [0.01], "money counted without a record"
        assert budget["spent_usd"] == 0.01
        assert budget["reserved_usd"] == 0
        assert '"event": "call_cut_off_counted"' in airlock.daemon.log.read_text()
        verify = airlock.audit_verify()
        assert verify.returncode == 0, verify.stdout + verify.stderr


PAGE = 4096


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _spend(client: httpx.Client, token: str, params: dict[str, Any]) -> object:
    try:
        return client.post(
            "/v1/ops/llm/chat",
            json={"params": params},
            headers={"Authorization": f"Bearer {token}"},
        ).status_code
    except httpx.HTTPError as exc:
        return exc


def test_the_dashboards_revoke_all_on_a_locked_state_database_is_a_clear_503(
    tmp_path: Path,
) -> None:
    """The panic button on the dashboard, like the API: a 503 that names the cause and
    says the sessions are refused already (they are), a record after the revocation
    records, and no traceback (it was a bare 500)."""
    airlock = Airlock(tmp_path / "home", overrides={"dashboard": {"listen": "127.0.0.1:0"}})
    airlock.start()
    try:
        person = Browser(dashboard_url(airlock))
        assert person.login(airlock.phone.code()).status_code == 303
        remember(person.http.cookies["airlock_dashboard"])
        with airlock.client() as agent:
            token = airlock.session(agent)["token"]
            csrf = person.csrf("/sessions")
            holder = sqlite3.connect(airlock.paths.state_db, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                refused = person.post("/sessions/revoke-all", {"csrf": csrf})
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert refused.status_code == 503, refused.text
            assert "state database" in refused.text
            assert "locked" in refused.text
            assert "refused already" in refused.text
            assert airlock.op(agent, token, "count_unread").status_code == 401
        person.close()
        events = [r["event"] for r in _records(airlock)]
        assert events[events.index("session_revoked") + 1] == "state_write_failed"
    finally:
        airlock.stop()
    assert "Traceback" not in airlock.daemon.log.read_text()
