"""The SQLite state store: private files, durable state, atomic check-and-set."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from airlock.errors import AirlockError
from airlock.state.store import (
    MAX_LOCKOUTS,
    MIGRATIONS,
    AccessRequest,
    RequestStatus,
    Session,
    StateStore,
    WriteApproval,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def a_request(request_id: str = "req_1", code: str = "AB12") -> AccessRequest:
    return AccessRequest(
        id=request_id,
        code=code,
        claim_hash="c" * 64,
        fingerprint="blue-otter-42",
        services=("gmail", "calendar"),
        access="read",
        reason="summarise today's mail",
        ttl=3600,
        operation=None,
        requester_uid=1000,
        requester_pid=4242,
        status=RequestStatus.PENDING,
        created_at=100.0,
        expires_at=400.0,
        agent="claude",
    )


def a_session(session_id: str = "ses_1", uid: int = 1000, expires_at: float = 500.0) -> Session:
    return Session(
        id=session_id,
        token_hash=f"{session_id:x<64}"[:64],
        services=("gmail",),
        access="read",
        uid=uid,
        created_at=100.0,
        expires_at=expires_at,
        request_id="req_1",
    )


def test_state_files_are_private_from_creation(data_dir: Path) -> None:
    with StateStore(data_dir / "state.db") as store:
        store.add_failure(1.0)  # forces the WAL file into existence
        files = [data_dir / "state.db", data_dir / "state.db-wal", data_dir / "state.db-shm"]
        assert all(f.exists() for f in files)
        assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
    assert mode(data_dir) == 0o700


def test_an_existing_readable_state_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    StateStore(path).close()
    assert mode(path) == 0o600


def test_runs_in_wal_mode(store: StateStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_schema_is_migrated_once_and_kept_on_reopen(data_dir: Path) -> None:
    path = data_dir / "state.db"
    with StateStore(path) as store:
        assert store.schema_version() == len(MIGRATIONS)
        store.insert_request(a_request())
    with StateStore(path) as store:
        assert store.schema_version() == len(MIGRATIONS)
        assert store.get_request("req_1") == a_request()


def test_a_database_from_a_newer_airlock_is_refused(data_dir: Path) -> None:
    path = data_dir / "state.db"
    StateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(AirlockError, match="newer Airlock"):
        StateStore(path)


def test_a_request_round_trips_with_every_field(store: StateStore) -> None:
    request = AccessRequest(
        **{
            **a_request().__dict__,
            "operation": {"service": "gmail", "name": "move", "params": {"id": "1.2"}},
            "access": "write",
            "sensitive": True,
        }
    )
    store.insert_request(request)
    assert store.get_request(request.id) == request
    assert store.get_request_by_code("AB12") == request
    assert store.list_requests(RequestStatus.PENDING) == [request]
    assert store.get_request("nope") is None


def test_a_request_is_answered_only_once(store: StateStore) -> None:
    store.insert_request(a_request())
    assert store.set_request_status(
        "req_1", RequestStatus.APPROVED, decided_at=200.0, session_id="ses_1"
    )
    assert not store.set_request_status("req_1", RequestStatus.DENIED, decided_at=201.0)
    answered = store.get_request("req_1")
    assert answered is not None
    assert (answered.status, answered.decided_at, answered.session_id) == (
        "approved",
        200.0,
        "ses_1",
    )


def test_pending_requests_past_their_expiry_are_listed(store: StateStore) -> None:
    store.insert_request(a_request("req_1", "AAAA"))
    store.insert_request(
        AccessRequest(**{**a_request("req_2", "BBBB").__dict__, "expires_at": 900.0})
    )
    assert [r.id for r in store.pending_requests_due(500.0)] == ["req_1"]


def test_a_session_is_found_by_token_hash_and_revoked(store: StateStore) -> None:
    session = a_session()
    store.insert_session(session)
    assert store.find_session_by_token_hash(session.token_hash) == session
    assert store.revoke_session("ses_1", at=200.0)
    assert not store.revoke_session("ses_1", at=300.0)
    revoked = store.get_session("ses_1")
    assert revoked is not None
    assert revoked.revoked_at == 200.0


def test_session_repr_leaves_out_the_token_hash(store: StateStore) -> None:
    session = a_session()
    assert session.token_hash not in repr(session)


def test_sessions_are_listed_by_uid_and_activity(store: StateStore) -> None:
    store.insert_session(a_session("ses_1", uid=1000, expires_at=500.0))
    store.insert_session(a_session("ses_2", uid=1000, expires_at=200.0))
    store.insert_session(a_session("ses_3", uid=2000, expires_at=500.0))
    assert [s.id for s in store.list_sessions(uid=1000)] == ["ses_1", "ses_2"]
    assert [s.id for s in store.list_sessions(uid=1000, active_at=300.0)] == ["ses_1"]


def test_use_counts_are_exact_under_concurrent_use(store: StateStore) -> None:
    store.insert_session(a_session())

    def use() -> None:
        for _ in range(50):
            store.increment_use("ses_1")

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session = store.get_session("ses_1")
    assert session is not None
    assert session.use_count == 400


def test_each_expired_session_is_reported_once(store: StateStore) -> None:
    store.insert_session(a_session("ses_1", expires_at=200.0))
    store.insert_session(a_session("ses_2", expires_at=900.0))
    assert [s.id for s in store.newly_expired(300.0)] == ["ses_1"]
    store.note_expiry("ses_1")
    assert store.newly_expired(300.0) == []
    assert [s.id for s in store.newly_expired(1000.0)] == ["ses_2"]


def test_the_last_accepted_step_only_moves_forward(store: StateStore) -> None:
    assert store.last_step() is None
    assert store.advance_last_step(10)
    assert not store.advance_last_step(10)
    assert not store.advance_last_step(9)
    assert store.advance_last_step(11)
    assert store.last_step() == 11


def test_step_failures_and_lock_survive_a_reopen(data_dir: Path) -> None:
    path = data_dir / "state.db"
    with StateStore(path) as store:
        store.advance_last_step(42)
        store.add_failure(10.0)
        store.add_failure(20.0)
        store.lock(999.0, 3)
    with StateStore(path) as store:
        assert store.last_step() == 42
        assert store.count_failures_since(0.0) == 2
        assert store.locked_until() == 999.0
        assert store.last_lockout() == (999.0, 3)


def test_a_negative_count_of_lockouts_is_refused_and_a_missing_lock_row_made_again(
    store: StateStore,
) -> None:
    """The count doubles a lockout: a negative one (written into the database by hand)
    made the doubling raise inside the code check, which undid the failure's record, and
    approvals never locked. The database refuses it; and a lock row deleted by hand does
    not stop approvals from locking."""
    with pytest.raises(sqlite3.IntegrityError):
        store._execute("UPDATE approval_lock SET lockouts = -1 WHERE id = 1")
    store._execute("DELETE FROM approval_lock")
    assert store.last_lockout() == (None, 0)
    store.lock(500.0, 1)
    assert store.locked_until() == 500.0
    for written in ("abc", 2**63 - 1):  # text passes the check; so does a huge count
        store._execute("UPDATE approval_lock SET lockouts = ? WHERE id = 1", (written,))
        assert store.last_lockout() == (500.0, MAX_LOCKOUTS)


def test_failures_are_counted_inside_a_window(store: StateStore) -> None:
    for at in (10.0, 20.0, 30.0):
        store.add_failure(at)
    assert store.count_failures_since(15.0) == 2
    store.clear_failures(before=20.0)
    assert store.count_failures_since(0.0) == 1
    store.clear_failures()
    assert store.count_failures_since(0.0) == 0


def test_a_write_approval_lets_exactly_one_racing_operation_through(store: StateStore) -> None:
    store.insert_write_approval(
        WriteApproval("req_1", "h" * 64, created_at=100.0, expires_at=500.0, session_id="ses_1")
    )
    winners: list[WriteApproval] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        used = store.consume_write_approval("h" * 64, session_id="ses_1", now=200.0)
        if used is not None:
            winners.append(used)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert winners[0].used_at == 200.0
    stored = store.get_write_approval("req_1")
    assert stored is not None
    assert stored.used_at == 200.0


def test_a_write_approval_is_bound_to_its_session_and_expiry(store: StateStore) -> None:
    store.insert_write_approval(
        WriteApproval("req_1", "h" * 64, created_at=100.0, expires_at=500.0)
    )
    assert store.consume_write_approval("h" * 64, session_id="ses_1", now=200.0) is None
    assert store.bind_write_approval("req_1", "ses_1")
    assert store.consume_write_approval("h" * 64, session_id="ses_2", now=200.0) is None
    assert store.consume_write_approval("h" * 64, session_id="ses_1", now=600.0) is None
    assert store.consume_write_approval("x" * 64, session_id="ses_1", now=200.0) is None
    assert store.consume_write_approval("h" * 64, session_id="ses_1", now=200.0) is not None


def test_a_failed_transaction_leaves_nothing_behind(store: StateStore) -> None:
    def half_done() -> None:
        with store.transaction():
            store.advance_last_step(5)
            store.add_failure(1.0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        half_done()
    assert store.last_step() is None
    assert store.count_failures_since(0.0) == 0


def test_two_stores_on_one_file_see_each_others_writes(data_dir: Path) -> None:
    path = data_dir / "state.db"
    with StateStore(path) as daemon, StateStore(path) as cli:
        assert daemon.advance_last_step(7)
        assert not cli.advance_last_step(7)
        assert cli.last_step() == 7


def test_uses_counted_in_memory_are_stored_in_one_update(store: StateStore) -> None:
    store.insert_session(a_session())
    assert store.increment_use("ses_1", 5) == 5
    assert store.increment_use("ses_1") == 6
    assert store.increment_use("ses_unknown", 3) == 0
