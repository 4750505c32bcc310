"""A revocation killed between its record and the state database, then a restart.

A revoke writes its fsynced ``session_revoked`` (or ``approval_revoked``) record first,
then the state database. Here another process holds ``state.db`` (``BEGIN EXCLUSIVE``, as
a ``sqlite3`` shell would), so the database write waits; the test kills the daemon
(SIGKILL) once the record is on disk, lets the database go, and starts the daemon again.
What the log says was revoked must be revoked: the token refused, ``airlock sessions``
without it, the approval not collectible, and a record of the revocation applied at the
start in a log that verifies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.daemon_harness import Airlock, killed_after_record, leaked_secrets
from tests.e2e.dashboard_support import DASHBOARD_ON, Browser, dashboard_url

AT_START = ("session_revoked_at_start", "approval_revoked_at_start")


def _records(airlock: Airlock) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(airlock.paths.audit_dir.glob("audit*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def _verified(airlock: Airlock) -> None:
    verify = airlock.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("which", ["all", "one"])
def test_a_revoke_killed_before_its_database_write_is_applied_at_the_next_start(
    tmp_path: Path, which: str
) -> None:
    airlock = Airlock(tmp_path / "home").start()
    try:
        with airlock.client() as agent:
            session = airlock.session(agent)
            # Revoke-all takes the oldest first and is killed before the next: the log
            # says nothing of this one, which must still work after the restart.
            kept = airlock.session(agent)
            path = "/v1/sessions" if which == "all" else f"/v1/sessions/{session['id']}"
            killed_after_record(airlock, lambda: agent.delete(path), "session_revoked")
        airlock.start()
        with airlock.client() as agent:
            refused = airlock.op(agent, session["token"], "count_unread")
            assert refused.status_code == 401, refused.text
            assert airlock.op(agent, kept["token"], "count_unread").status_code == 200
        listed = airlock.cli("sessions", "--json")
        assert listed.returncode == 0, listed.stderr
        assert session["id"] not in listed.stdout
        assert kept["id"] in listed.stdout
        records = _records(airlock)
        applied = [r for r in records if r["event"] == "session_revoked_at_start"]
        assert [r["session"] for r in applied] == [session["id"]]
        original = next(r for r in records if r["event"] == "session_revoked")
        assert applied[0]["revoked_seq"] == original["seq"]
        started = [r["seq"] for r in records if r["event"] == "daemon_started"]
        assert started[-1] < applied[0]["seq"]
        _verified(airlock)
        airlock.restart()  # applied once: the next start finds nothing to do
        assert [r for r in _records(airlock) if r["event"] in AT_START] == applied
    finally:
        airlock.stop()
    assert not leaked_secrets(airlock.home)


@pytest.mark.parametrize("how", ["revoke", "logout"])
def test_a_dashboard_revoke_or_logout_killed_before_its_database_write_is_applied(
    tmp_path: Path, how: str
) -> None:
    """The dashboard's Revoke (an agent's session) and Log out (the login itself) record
    their own ``session_revoked``; the start finds those too."""
    airlock = Airlock(tmp_path / "home", overrides=DASHBOARD_ON).start()
    person = Browser(dashboard_url(airlock))
    try:
        assert person.login(airlock.phone.code()).status_code == 303
        login = next(s for s in _listed(airlock) if s["access"] == "person")
        with airlock.client() as agent:
            session = airlock.session(agent)
        csrf = person.csrf("/sessions")
        path = f"/sessions/{session['id']}/revoke" if how == "revoke" else "/logout"
        ended = session["id"] if how == "revoke" else login["id"]
        killed_after_record(airlock, lambda: person.post(path, {"csrf": csrf}), "session_revoked")
        airlock.start()
        assert ended not in [s["id"] for s in _listed(airlock)]
        applied = [r for r in _records(airlock) if r["event"] == "session_revoked_at_start"]
        assert [r["session"] for r in applied] == [ended]
        _verified(airlock)
    finally:
        person.close()
        airlock.stop()


def _listed(airlock: Airlock) -> list[dict[str, Any]]:
    listed = airlock.cli("sessions", "--json")
    assert listed.returncode == 0, listed.stderr
    sessions: list[dict[str, Any]] = json.loads(listed.stdout)
    return sessions


def test_an_approval_cancelled_by_a_killed_revoke_all_stays_cancelled(tmp_path: Path) -> None:
    airlock = Airlock(tmp_path / "home").start()
    try:
        with airlock.client() as agent:
            created = airlock.request(agent)
            assert airlock.approve(agent, created["code"]).status_code == 200
            killed_after_record(airlock, lambda: agent.delete("/v1/sessions"), "approval_revoked")
        airlock.start()
        with airlock.client() as agent:
            state = agent.get(
                f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
            ).json()
            assert state["status"] == "revoked", state
            assert state.get("session") is None
        applied = [r for r in _records(airlock) if r["event"] == "approval_revoked_at_start"]
        assert [r["request"] for r in applied] == [created["id"]]
        _verified(airlock)
    finally:
        airlock.stop()


def test_a_normal_restart_replays_nothing(tmp_path: Path) -> None:
    """Sessions live and revoked, an approval cancelled: all already in the database."""
    airlock = Airlock(tmp_path / "home").start()
    try:
        with airlock.client() as agent:
            ended = airlock.session(agent)
            revoked = agent.delete(f"/v1/sessions/{ended['id']}")
            assert revoked.status_code == 200, revoked.text
            cancelled = airlock.request(agent)
            assert airlock.approve(agent, cancelled["code"]).status_code == 200
            assert agent.delete("/v1/sessions").json()["cancelled"] == [cancelled["id"]]
            live = airlock.session(agent)
        airlock.restart()
        with airlock.client() as agent:
            assert airlock.op(agent, live["token"], "count_unread").status_code == 200
            assert airlock.op(agent, ended["token"], "count_unread").status_code == 401
        records = _records(airlock)
        assert [r["event"] for r in records].count("daemon_started") == 2
        assert not [r for r in records if r["event"] in AT_START]
        _verified(airlock)
    finally:
        airlock.stop()
