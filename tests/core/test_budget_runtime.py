"""The daemon's budgets outlive a config reload, and money a call may have spent without
a reservation on record is counted (and audited) once the database takes writes again.
An in-process runtime with a fake clock, a real state store and a real audit log."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway_fixtures import make_runtime

from airlock.common.clock import FakeClock
from airlock.daemon.runtime import Runtime
from airlock.errors import BudgetExhausted
from airlock.framework.spending import nano_usd
from airlock.state.store import StateStore

CENT = nano_usd("0.01")


def run(tmp_path: Path, scenario: Callable[[Runtime], Awaitable[None]]) -> Runtime:
    runtime, _ = make_runtime(tmp_path, FakeClock(start=1_800_000_000.0))

    async def main() -> None:
        await runtime.start()
        try:
            await scenario(runtime)
        finally:
            await runtime.stop()

    asyncio.run(main())
    return runtime


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

    run(tmp_path, scenario)


def test_a_hold_whose_write_failed_is_counted_and_audited_by_the_daemon(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime) -> None:
        runtime.store.open_budget("ses_a", 10 * CENT)
        budgets = runtime.gateway.priced.budgets
        held = budgets.shrink(budgets.hold_rest("ses_a"), 6 * CENT, service="notes")
        # Another process holds the write lock for longer than the daemon waits (its wait
        # shortened here from 10 s: the test's own setting, not the code under test).
        runtime.store._conn.execute("PRAGMA busy_timeout = 50")
        other = sqlite3.connect(runtime.paths.state_db, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            budgets.record(held, service="notes")
        other.rollback()
        other.close()
        # the daemon's stop (or its next housekeeping round) writes it as spent

    runtime = run(tmp_path, scenario)
    settled = [e for e in audit_events(runtime) if e["event"] == "budget_settled_at_reservation"]
    assert [(e["session"], e["cost_usd"]) for e in settled] == [("ses_a", 0.06)]
    assert "could not be written" in settled[0]["reason"]
    with StateStore(runtime.paths.state_db) as store:
        assert store.get_budget("ses_a") == (10 * CENT, 6 * CENT, 0)
