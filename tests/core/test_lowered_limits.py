"""Holding open sessions to lowered limits when the state database refuses the write for a
while (another process holding it): the change is recorded once, written at the next
round, and the session is never looser than its record meanwhile for longer than that.
A session issued later with a longer expiry (a collect that began before a reload) is
brought in at the next round. The daemon end to end is tests/e2e/test_reload_limits.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from pathlib import Path

from airlock.common.clock import FakeClock
from airlock.daemon.lowered_limits import LoweredLimits
from airlock.framework.connectors import Connector
from airlock.framework.spending import SpendSettings, nano_usd
from airlock.gateway.budgets import Budgets
from airlock.gateway.services import Service
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


def _spend_service(max_usd: float) -> dict[str, Service]:
    return {"llm": Service("llm", Connector, SpendSettings(max_usd=max_usd))}


def test_a_recorded_change_the_database_refused_holds_after_the_limit_is_raised_again(
    tmp_path: Path,
) -> None:
    """Lowered, recorded, refused by the database; then the config is raised again before
    the next round. The record says what was taken back (the next start would apply it
    whatever the config): the running daemon writes it too, and spends no more."""
    clock = FakeClock()
    audit = AuditLog(tmp_path / "audit", tmp_path / "audit.key", clock=clock)
    store = StateStore(tmp_path / "state.db", busy_timeout_ms=50)
    store.insert_session(_session(clock, "ses_long", 7200))
    spend = dataclasses.replace(
        _session(clock, "ses_spend", 600), services=("llm",), access=Access.SPEND
    )
    store.insert_session(spend)
    store.open_budget("ses_spend", nano_usd(5))
    limits = LoweredLimits(store, Budgets(store, clock), audit, clock)
    lowered = AirlockConfig(sessions={"max_ttl": "30m"})

    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    asyncio.run(limits.apply(lowered, _spend_service(1.0)))
    other.execute("ROLLBACK")
    other.close()
    assert [r["expires_at"] for r in _events(tmp_path, "session_shortened")] == [clock.now() + 1800]
    assert [r["limit_usd"] for r in _events(tmp_path, "budget_lowered")] == [1.0]

    asyncio.run(limits.apply(AirlockConfig(), _spend_service(10.0)))  # raised again
    assert _expiry(store, "ses_long") == clock.now() + 1800
    assert store.get_budget("ses_spend") == (nano_usd(1), 0, 0)
    # A fresh process (the gateway's budgets after the reload) holds no more than that.
    assert Budgets(store, clock).hold_rest("ses_spend").amount_nano == nano_usd(1)
    assert len(_events(tmp_path, "session_shortened")) == 1
    assert len(_events(tmp_path, "budget_lowered")) == 1
    store.close()
    audit.close()
