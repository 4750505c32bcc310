"""The daemon's budgets outlive a config reload, and money a call may have spent without
a reservation on record is counted (and audited) once the database takes writes again.
An in-process runtime with a fake clock, a real state store and a real audit log."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway_fixtures import run_runtime

from airlock.daemon.runtime import Runtime
from airlock.errors import BudgetExhausted
from airlock.framework.spending import nano_usd
from airlock.models import Access
from airlock.state.records import Session
from airlock.state.store import StateStore

CENT = nano_usd("0.01")


def audit_events(runtime: Runtime) -> list[dict[str, Any]]:
    lines = (runtime.paths.audit_dir / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_money_held_for_a_call_being_priced_stays_held_across_a_reload(tmp_path: Path) -> None:
    """A reload builds a new gateway; the budget it decides from must still count what
    the old one holds for calls in flight (not in the database yet), or two calls could
    both be sent for the same money."""

    async def scenario(runtime: Runtime) -> None:
        runtime.store.open_budget("ses_a", 10 * CENT)
        in_flight = runtime.gateway.priced.budgets.hold_rest("ses_a")  # being priced
        assert in_flight.amount_nano == 10 * CENT
        services = {"notes": {"connector": "notebook"}, "more": {"connector": "notebook"}}
        runtime.paths.config_file.write_text(yaml.safe_dump({"services": services}))
        await runtime.reload()
        assert "more" in runtime.services  # the reload took effect
        budgets = runtime.gateway.priced.budgets
        assert budgets.hold_rest("ses_a").amount_nano == 0  # nothing left for a second call
        with pytest.raises(BudgetExhausted):
            budgets.shrink(budgets.hold_rest("ses_a"), CENT, service="notes")

    run_runtime(tmp_path, scenario)


class Locked:
    """Another process holding the state database's write lock (an airlock command, say)
    for longer than the daemon waits; the daemon's wait is shortened from 10 s to 50 ms,
    the test's own setting, not the code under test."""

    def __init__(self, runtime: Runtime) -> None:
        runtime.store._conn.execute("PRAGMA busy_timeout = 50")
        self.other = sqlite3.connect(runtime.paths.state_db, isolation_level=None)
        self.other.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.other.rollback()
        self.other.close()


def failed_write(runtime: Runtime, cents: int) -> Locked:
    """A spend call whose reservation could not be written (the lock stays held)."""
    now = runtime.clock.now()
    session = Session("ses_a", "h" * 64, ("notes",), Access.SPEND, 0, now, now + 3600)
    runtime.store.insert_session(session)
    runtime.store.open_budget("ses_a", 10 * CENT)
    budgets = runtime.gateway.priced.budgets
    held = budgets.shrink(budgets.hold_rest("ses_a"), cents * CENT, service="notes")
    locked = Locked(runtime)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        budgets.record(held, service="notes")
    return locked


def settled(runtime: Runtime) -> list[tuple[str, float]]:
    return [
        (e["session"], e["cost_usd"])
        for e in audit_events(runtime)
        if e["event"] == "budget_settled_at_reservation"
    ]


def test_housekeeping_counts_a_hold_whose_write_failed_once_the_lock_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Audited once, before the database changes, however many rounds the lock lasts."""
    monkeypatch.setattr("airlock.daemon.runtime.EXPIRY_INTERVAL", 0.01)

    async def scenario(runtime: Runtime) -> None:
        locked = failed_write(runtime, 6)
        for _ in range(500):  # housekeeping rounds while the lock is held, until one said it
            if settled(runtime):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # and more rounds after that one
        assert settled(runtime) == [("ses_a", 0.06)]  # announced, not yet counted
        assert runtime.store.get_budget("ses_a") == (10 * CENT, 0, 0)
        locked.release()
        for _ in range(100):
            if runtime.store.get_budget("ses_a") == (10 * CENT, 6 * CENT, 0):
                break
            await asyncio.sleep(0.02)
        assert runtime.store.get_budget("ses_a") == (10 * CENT, 6 * CENT, 0)
        assert runtime.gateway.priced.budgets.unrecorded() == []

    runtime = run_runtime(tmp_path, scenario)
    assert settled(runtime) == [("ses_a", 0.06)]
    assert "could not be written" in next(
        e["reason"] for e in audit_events(runtime) if e["event"] == "budget_settled_at_reservation"
    )


def test_the_stop_counts_a_hold_whose_write_failed(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime) -> None:
        failed_write(runtime, 6).release()  # no housekeeping round before the stop

    runtime = run_runtime(tmp_path, scenario)
    assert settled(runtime) == [("ses_a", 0.06)]
    with StateStore(runtime.paths.state_db) as store:
        assert store.get_budget("ses_a") == (10 * CENT, 6 * CENT, 0)


def test_a_hold_the_database_refuses_until_the_stop_is_audited_as_not_counted(
    tmp_path: Path,
) -> None:
    """What a restart will not know is in the audit log, for the person to see."""
    locked: list[Locked] = []

    async def scenario(runtime: Runtime) -> None:
        locked.append(failed_write(runtime, 6))

    try:
        runtime = run_runtime(tmp_path, scenario)
    finally:
        locked[0].release()
    lost = [e for e in audit_events(runtime) if e["event"] == "budget_hold_not_counted"]
    assert [(e["session"], e["cost_usd"]) for e in lost] == [("ses_a", 0.06)]
    # the same hold the stop announced before its last try: the two records name it
    announced = [e for e in audit_events(runtime) if e["event"] == "budget_settled_at_reservation"]
    assert [e["reservation"] for e in announced] == [lost[0]["reservation"]]
