"""The start's replay of revocations reads only the log since the live sessions began,
and a log it cannot read there stops the start (the session stays, nothing is served).
The daemon killed mid-revoke is tests/e2e/test_crash_revocations.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from airlock.common.clock import FakeClock
from airlock.daemon.recorded_revocations import apply_recorded_revocations
from airlock.security.audit import AuditLog
from airlock.state.records import Session
from airlock.state.store import StateStore

DAY = 86_400.0


def _setup(tmp_path: Path) -> tuple[StateStore, AuditLog, FakeClock, list[Path]]:
    """A day-old log in rotated files (a record each: rotated once written), then a
    session begun now whose revocation is recorded and not applied; returns the files of
    the day before."""
    clock = FakeClock()
    audit = AuditLog(tmp_path / "audit", tmp_path / "audit.key", rotate_bytes=1, clock=clock)
    store = StateStore(tmp_path / "state.db")
    now = clock.now()
    clock.set(now - DAY)
    for n in range(3):
        audit.append_sync("operation", n=n)
    old = sorted((tmp_path / "audit").glob("audit-*.jsonl"))
    clock.set(now)
    store.insert_session(
        Session(
            id="ses_live",
            token_hash="a" * 64,
            services=("mail",),
            access="read",
            uid=1000,
            created_at=now,
            expires_at=now + 3600,
        )
    )
    clock.advance(10)
    audit.append_sync("session_revoked", session="ses_live", owner_uid=1000)
    return store, audit, clock, old


def _unreadable(path: Path) -> None:
    path.unlink()
    path.mkdir()  # reading it fails (IsADirectoryError), root or not


def test_only_the_log_since_the_live_sessions_began_is_read(tmp_path: Path) -> None:
    store, audit, clock, old = _setup(tmp_path)
    # Files that end a day before the session began are never opened (the last of them
    # is: the bisection finds where the range starts by its end).
    assert len(old) >= 2
    for path in old[:-1]:
        _unreadable(path)
    asyncio.run(apply_recorded_revocations(store, audit, clock))
    assert store.get_session("ses_live").revoked_at == clock.now()  # type: ignore[union-attr]
    applied = audit.query(event="session_revoked_at_start", since=clock.now() - 60)
    assert [r["session"] for r in applied] == ["ses_live"]


def test_a_log_it_cannot_read_stops_the_start_and_the_session_stays(tmp_path: Path) -> None:
    store, audit, clock, old = _setup(tmp_path)
    revocation = sorted((tmp_path / "audit").glob("audit-*.jsonl"))[-1]
    assert revocation not in old
    assert b"session_revoked" in revocation.read_bytes()
    _unreadable(revocation)
    with pytest.raises(IsADirectoryError):
        asyncio.run(apply_recorded_revocations(store, audit, clock))
    assert store.get_session("ses_live").revoked_at is None  # type: ignore[union-attr]
