"""Holding open sessions to lowered limits when the state database refuses the write for a
while (another process holding it): the change is recorded once, written at the next
round, and the session is never looser than its record meanwhile for longer than that.
A session issued later with a longer expiry (a collect that began before a reload) is
brought in at the next round. The daemon end to end is tests/e2e/test_reload_limits.py."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from airlock.common.clock import FakeClock
from airlock.daemon.lowered_limits import LoweredLimits
from airlock.gateway.budgets import Budgets
from airlock.models import Access
from airlock.security.audit import AuditLog
from airlock.settings.config import AirlockConfig
from airlock.state.records import Session
from airlock.state.store import StateStore


def _session(clock: FakeClock, name: str, ttl: float) -> Session:
    now = clock.now()
    return Session(
        id=name,
        token_hash=name.ljust(64, "0"),
        services=("mail",),
        access=Access.READ,
        uid=1000,
        created_at=now,
        expires_at=now + ttl,
    )


def _expiry(store: StateStore, session_id: str) -> float:
    session = store.get_session(session_id)
    assert session is not None
    return session.expires_at


def _events(tmp_path: Path, event: str) -> list[dict[str, object]]:
    lines = (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def test_a_shortening_the_database_refuses_is_written_at_the_next_round_recorded_once(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    audit = AuditLog(tmp_path / "audit", tmp_path / "audit.key", clock=clock)
    store = StateStore(tmp_path / "state.db", busy_timeout_ms=50)
    store.insert_session(_session(clock, "ses_long", 7200))
    limits = LoweredLimits(store, Budgets(store, clock), audit, clock)
    config = AirlockConfig(sessions={"max_ttl": "30m"})

    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    asyncio.run(limits.apply(config, {}))
    assert _expiry(store, "ses_long") == clock.now() + 7200  # refused
    other.execute("ROLLBACK")

    asyncio.run(limits.apply(config, {}))  # the next round
    assert _expiry(store, "ses_long") == clock.now() + 1800
    [record] = _events(tmp_path, "session_shortened")
    assert record["expires_at"] == clock.now() + 1800

    # Issued afterwards with the config of before (a collect waiting since then).
    store.insert_session(_session(clock, "ses_late", 7200))
    asyncio.run(limits.apply(config, {}))
    assert _expiry(store, "ses_late") == clock.now() + 1800
    assert [r["session"] for r in _events(tmp_path, "session_shortened")] == [
        "ses_long",
        "ses_late",
    ]
    other.close()
    store.close()
    audit.close()
