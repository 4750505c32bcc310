"""A revocation whose record is on disk and whose database write was refused (another
process holds ``state.db`` past the wait, or its disk is full): the daemon refuses the
session at once, on every path that reads it, and each housekeeping round writes it until
the database takes it, without recording it again. The HTTP answers (a 503 that says the
sessions are refused already) are in tests/e2e/test_crash_consistency.py; a restart
applying the record is tests/e2e/test_crash_revocations.py."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from gateway_fixtures import run_runtime

from airlock.daemon.runtime import Runtime
from airlock.errors import Unauthenticated, state_unavailable
from airlock.security.peers import Peer
from airlock.state.store import RevocationNotWritten

ME = Peer(uid=os.getuid(), pid=os.getpid())
OTHER = Peer(uid=ME.uid + 1, pid=1)


class Locked:
    """Another process holding the state database's write lock past the daemon's wait
    (shortened from 10 s to 50 ms: the test's setting, not the code under test)."""

    def __init__(self, runtime: Runtime) -> None:
        runtime.store._conn.execute("PRAGMA busy_timeout = 50")
        self.other = sqlite3.connect(runtime.paths.state_db, isolation_level=None)
        self.other.execute("BEGIN EXCLUSIVE")

    def revoked_in_database(self) -> set[str]:
        rows = self.other.execute("SELECT id FROM sessions WHERE revoked_at IS NOT NULL")
        return {row[0] for row in rows}

    def release(self) -> None:
        self.other.rollback()


def records(runtime: Runtime, event: str) -> list[dict[str, Any]]:
    lines = (runtime.paths.audit_dir / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


async def refused(runtime: Runtime, token: str, peer: Peer = ME) -> bool:
    try:
        await runtime.gateway.run(token, peer, "notes", "read_note", {"name": "n"})
    except Unauthenticated:
        return True
    return False


def test_a_revoke_the_database_refuses_is_refused_at_once_and_written_at_a_later_round(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime) -> None:
        one, one_token = runtime.sessions.create(("notes",), "read", ME.uid)
        two, two_token = runtime.sessions.create(("notes",), "read", ME.uid)
        three, three_token = runtime.sessions.create(("notes",), "read", ME.uid)
        kept, kept_token = runtime.sessions.create(("notes",), "read", OTHER.uid)
        assert not await refused(runtime, one_token)  # cached by the session manager
        locked = Locked(runtime)
        try:
            with pytest.raises(RevocationNotWritten):
                await runtime.approvals.revoke_session(one.id, ME)
            assert await refused(runtime, one_token)
            # Revoke-all: the first write refused, the next not waited for, all refused.
            with pytest.raises(RevocationNotWritten):
                await runtime.approvals.revoke_all(uid=ME.uid, channel="cli")
            assert await refused(runtime, two_token)
            assert await refused(runtime, three_token)
            now = runtime.clock.now()
            for session in (one, two, three):  # what streams and the dashboard read
                found = runtime.store.get_session(session.id)
                assert found is not None
                assert not found.is_active(now)
            assert [s.id for s in runtime.store.list_sessions(active_at=now)] == [kept.id]
            assert [s.id for s in runtime.sessions.list(ME.uid)] == []
            with contextlib.suppress(sqlite3.Error):  # a round while the lock is held
                await runtime.housekeeping_round()
            assert locked.revoked_in_database() == set()
            assert await refused(runtime, one_token)
        finally:
            locked.release()
        await runtime.housekeeping_round()
        assert locked.revoked_in_database() == {one.id, two.id, three.id}
        assert runtime.store.held_revocations == {}
        assert await refused(runtime, one_token)
        assert await refused(runtime, three_token)
        assert not await refused(runtime, kept_token, OTHER)

    runtime = run_runtime(tmp_path, scenario)
    revoked = [r["session"] for r in records(runtime, "session_revoked")]
    assert sorted(revoked) == sorted(set(revoked))  # each recorded once
    assert len(revoked) == 3


def test_the_answer_to_a_refused_revocation_says_the_session_is_refused_already() -> None:
    said = state_unavailable("state.db", revocation_held=True).message
    assert "could not be written" in said
    assert "refused already" in said
    assert "refused already" not in state_unavailable("state.db").message
