"""Budgets of spend sessions in the real state database, spent the way a spend call spends
(gateway/priced_calls.py): hold all that is left while the call is priced, shrink the hold
to its quote, record it, settle it at its cost. Exact exhaustion, races for the last cents,
a call that costs more than it reserved, and money spent surviving a restart."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pytest

from airlock.api import AccessRequestIn
from airlock.common.clock import FakeClock
from airlock.errors import BudgetExhausted, InvalidInput
from airlock.framework.connectors import Connector
from airlock.framework.spending import PricedConnector, SpendSettings, format_usd, nano_usd
from airlock.gateway.budgets import Budgets, Reservation, requested_budget
from airlock.gateway.priced_calls import audited_params
from airlock.gateway.services import Service
from airlock.settings.config import PermissionsConfig
from airlock.state.store import StateStore

CENT = nano_usd("0.01")


def budgets_of(store: StateStore, clock: FakeClock, session: str, limit: int) -> Budgets:
    budgets = Budgets(store, clock)
    budgets.open(session, limit)
    return budgets


def hold(budgets: Budgets, worst: int) -> Reservation:
    """What PricedCalls._open does: hold all that is left while the call is priced, then
    keep only its quote (refused: the whole hold is given back). Not yet durable."""
    ceiling = budgets.hold_rest("ses_a")
    try:
        return budgets.shrink(ceiling, worst, service="llm")
    except BudgetExhausted:
        budgets.release(ceiling)
        raise


def spend(budgets: Budgets, worst: int, pricing: threading.Lock | None = None) -> Reservation:
    """One spend call's reservation, durable. *pricing* is the per-session lock PricedCalls
    takes while a call is priced; the write runs outside it, as it does there."""
    with pricing or nullcontext():
        held = hold(budgets, worst)
    return budgets.record(held, service="llm")


def race(threads: int, call: Callable[[int], object]) -> int:
    """Start *threads* threads at once, thread i making call(i); how many were not refused
    (every other one must be refused for the budget: anything else fails the test)."""
    start = threading.Barrier(threads)
    won: list[int] = []
    refused: list[int] = []

    def one(index: int) -> None:
        start.wait()
        try:
            call(index)
        except BudgetExhausted:
            refused.append(index)
        else:
            won.append(index)

    running = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    assert len(won) + len(refused) == threads, "a call failed other than for the budget"
    return len(won)


def left(budgets: Budgets) -> int:
    state = budgets.state("ses_a")
    assert state is not None
    return state.left_nano


def test_dollars_are_counted_in_whole_nano_dollars_rounded_up() -> None:
    assert nano_usd("0.05") == 50_000_000
    assert nano_usd(0.1 + 0.2) == 300_000_001  # never less than the float says
    assert nano_usd("0.0000000001") == 1
    assert format_usd(nano_usd("0.05")) == "$0.05"
    assert format_usd(nano_usd("1.234")) == "$1.24"
    assert format_usd(nano_usd("0.000123")) == "$0.000123"
    with pytest.raises(ValueError, match="not a cost"):
        nano_usd("-1")


def test_a_budget_is_spent_exactly_to_zero_then_refuses(
    store: StateStore, clock: FakeClock
) -> None:
    budgets = budgets_of(store, clock, "ses_a", 5 * CENT)
    for _ in range(5):
        budgets.settle(spend(budgets, CENT), CENT)
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano, state.left_nano) == (5 * CENT, 0, 0)
    with pytest.raises(BudgetExhausted) as refused:
        spend(budgets, 1)
    assert refused.value.status == 402
    assert "nothing was sent" in refused.value.message
    assert "$0.00" in refused.value.message
    assert store.open_reservations() == []


def test_a_reservation_holds_money_until_it_is_settled(store: StateStore, clock: FakeClock) -> None:
    budgets = budgets_of(store, clock, "ses_a", 10 * CENT)
    held = spend(budgets, 8 * CENT)
    with pytest.raises(BudgetExhausted, match=r"budget left on llm is \$0.02"):
        spend(budgets, 3 * CENT)  # 8 held + 3 > 10
    assert left(budgets) == 2 * CENT, "a refused call keeps nothing"
    budgets.settle(held, 2 * CENT)  # it cost less than its worst case
    spend(budgets, 3 * CENT)
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano, state.left_nano) == (
        2 * CENT,
        3 * CENT,
        5 * CENT,
    )


def test_concurrent_calls_racing_for_the_last_cents_cannot_overspend(
    data_dir: Path, clock: FakeClock
) -> None:
    """Threads on two connections (as two processes would be) spend a cent each. Each side
    believes all 7 cents are its own; the database's check decides who wins."""
    first = StateStore(data_dir / "state.db")
    second = StateStore(data_dir / "state.db")
    sides = [budgets_of(first, clock, "ses_a", 7 * CENT), Budgets(second, clock)]
    pricing = [threading.Lock(), threading.Lock()]
    won = race(24, lambda i: spend(sides[i % 2], CENT, pricing[i % 2]))
    assert won == 7
    state = sides[1].state("ses_a")
    assert state is not None
    assert (state.reserved_nano, len(first.open_reservations())) == (7 * CENT, 7)
    first.close()
    second.close()


def test_a_call_costing_more_than_its_reservation_is_counted_in_full(
    store: StateStore, clock: FakeClock
) -> None:
    budgets = budgets_of(store, clock, "ses_a", 10 * CENT)
    held = spend(budgets, 6 * CENT)
    after = budgets.settle(held, 12 * CENT)  # the service charged more than quoted
    assert after.spent_nano == 12 * CENT
    assert after.left_nano == 0
    with pytest.raises(BudgetExhausted):
        spend(budgets, 1)


def test_money_spent_and_calls_cut_off_survive_a_restart(data_dir: Path, clock: FakeClock) -> None:
    store = StateStore(data_dir / "state.db")
    budgets = budgets_of(store, clock, "ses_a", 10 * CENT)
    budgets.settle(spend(budgets, 3 * CENT), 2 * CENT)
    spend(budgets, 4 * CENT)  # in flight when the daemon stops
    store.close()

    reopened = StateStore(data_dir / "state.db")
    again = Budgets(reopened, clock)
    cut = again.settle_cut_off()
    assert [(c.session_id, c.amount_nano) for c in cut] == [("ses_a", 4 * CENT)]
    state = again.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano, state.left_nano) == (6 * CENT, 0, 4 * CENT)
    assert again.settle_cut_off() == []  # each is counted once
    with pytest.raises(BudgetExhausted):
        spend(again, 5 * CENT)
    again.settle(spend(again, 4 * CENT), 4 * CENT)  # exactly what the last run left
    assert left(again) == 0
    reopened.close()


class Meter(PricedConnector):
    name = "meter"
    title = "A priced service"


class Plain(Connector):
    name = "plain"
    title = "A free service"


SERVICES = {
    "llm": Service("llm", Meter, SpendSettings(max_usd=0.5)),
    "notes": Service("notes", Plain, Plain.Settings()),
}


def ask(**body: object) -> int | None:
    request = AccessRequestIn.model_validate({"reason": "write a poem", **body})
    return requested_budget(request, SERVICES, PermissionsConfig())


def test_a_spend_request_defaults_to_and_is_capped_by_max_usd() -> None:
    assert ask(services=["llm"], access="spend") == nano_usd("0.5")
    assert ask(services=["llm"], access="spend", budget_usd=0.05) == nano_usd("0.05")
    assert ask(services=["llm"], access="spend", budget_usd=99) == nano_usd("0.5")
    assert ask(services=["llm"], access="read") is None


def test_permissions_max_usd_lowers_the_cap() -> None:
    request = AccessRequestIn.model_validate(
        {"reason": "r", "services": ["llm"], "access": "spend", "budget_usd": 0.4}
    )
    permissions = PermissionsConfig.model_validate({"llm": {"max_usd": 0.25}})
    assert requested_budget(request, SERVICES, permissions) == nano_usd("0.25")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"services": ["llm"], "access": "read", "budget_usd": 1}, "budget_usd"),
        ({"services": ["notes"], "access": "spend"}, "access"),
        ({"services": ["llm", "notes"], "access": "spend"}, "services"),
        (
            {
                "services": ["llm"],
                "access": "spend",
                "operation": {"service": "llm", "name": "chat", "params": {}},
            },
            "operation",
        ),
    ],
)
def test_a_wrong_spend_request_names_the_field(body: dict[str, object], field: str) -> None:
    request = AccessRequestIn.model_validate({"reason": "r", **body})
    with pytest.raises(InvalidInput) as raised:
        requested_budget(request, SERVICES, PermissionsConfig())
    assert raised.value.field == field


def test_the_audit_keeps_a_prompt_only_as_its_length_and_hash_unless_asked() -> None:
    params = {"model": "m", "messages": [{"role": "user", "content": "my secret plans"}]}
    kept = audited_params(SpendSettings(), params)
    assert set(kept) == {"chars", "sha256"}
    assert "secret" not in str(kept)
    assert kept == audited_params(SpendSettings(), dict(reversed(params.items())))  # canonical
    assert audited_params(SpendSettings(audit_prompts=True), params) == params


def test_a_hold_is_decided_in_memory_and_durable_only_once_recorded(
    store: StateStore, clock: FakeClock
) -> None:
    """hold_rest() and shrink() decide without a disk write (after one read of the budget);
    record() writes the same reservation with the database's own check."""
    budgets = budgets_of(store, clock, "ses_a", 10 * CENT)
    first = hold(budgets, 6 * CENT)
    assert store.get_budget("ses_a") == (10 * CENT, 0, 0), "nothing written yet"
    assert store.open_reservations() == []
    with pytest.raises(BudgetExhausted, match=r"budget left on llm is \$0.04"):
        hold(budgets, 5 * CENT)  # 6 held, not yet on disk, + 5 > 10
    budgets.record(first, service="llm")
    assert store.get_budget("ses_a") == (10 * CENT, 0, 6 * CENT)
    assert [r[0] for r in store.open_reservations()] == [first.id]
    budgets.settle(first, 2 * CENT)
    second = hold(budgets, 8 * CENT)  # 2 spent + 8 = 10: fits exactly
    with pytest.raises(BudgetExhausted):
        hold(budgets, 1)
    budgets.record(second, service="llm")
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano, state.left_nano) == (2 * CENT, 8 * CENT, 0)


def test_holds_read_the_budget_once_then_decide_without_the_database(
    store: StateStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = budgets_of(store, clock, "ses_a", 10 * CENT)
    before.settle(spend(before, 3 * CENT), 3 * CENT)
    reads: list[str] = []
    real = store.get_budget

    def counted(session_id: str) -> tuple[int, int, int] | None:
        reads.append(session_id)
        return real(session_id)

    monkeypatch.setattr(store, "get_budget", counted)
    restarted = Budgets(store, clock)  # knows nothing yet: reads what was spent
    for _ in range(7):  # 3 spent + 7 = 10
        hold(restarted, CENT)
    with pytest.raises(BudgetExhausted):
        hold(restarted, 1)
    assert reads == ["ses_a"]


def test_a_hold_the_database_refuses_stops_the_call_and_counts_its_worst_case(
    data_dir: Path, clock: FakeClock
) -> None:
    """Another writer took the money behind this process's back: recording the hold is
    refused by the database's check and the call fails with 402. Its request may have
    reached the service already, so its worst case is counted as spent (over the limit:
    the money may be gone), and nothing more can be spent."""
    ours, theirs = StateStore(data_dir / "state.db"), StateStore(data_dir / "state.db")
    budgets = budgets_of(ours, clock, "ses_a", 10 * CENT)
    spend(Budgets(theirs, clock), 9 * CENT)
    stale = hold(budgets, 5 * CENT)  # still believes 10 are left
    with pytest.raises(BudgetExhausted, match="stopped before any of its answer was read"):
        budgets.record(stale, service="llm")
    assert ours.get_budget("ses_a") == (10 * CENT, 5 * CENT, 9 * CENT)
    with pytest.raises(BudgetExhausted):  # it asked the database again: nothing is left
        hold(budgets, 1)
    restarted = Budgets(StateStore(data_dir / "state.db"), clock)
    with pytest.raises(BudgetExhausted):
        hold(restarted, 1)
    ours.close()
    theirs.close()


def test_a_hold_whose_write_fails_stays_taken(store: StateStore, clock: FakeClock) -> None:
    """The call is on its way when its hold is written: a write that fails must not give
    the money back for the next call to spend again."""
    budgets = budgets_of(store, clock, "ses_a", 10 * CENT)
    held = hold(budgets, 6 * CENT)
    store.close()  # the disk write cannot happen
    with pytest.raises(Exception, match="closed"):
        budgets.record(held, service="llm")
    with pytest.raises(BudgetExhausted):
        hold(budgets, 5 * CENT)  # only 4 are left: the 6 stay taken
    assert hold(budgets, 4 * CENT).amount_nano == 4 * CENT


def test_a_hold_whose_write_failed_is_spent_once_the_database_takes_writes(
    data_dir: Path, clock: FakeClock
) -> None:
    """Another process holds the database's write lock past the wait: the call is stopped
    and its hold kept; once the lock is gone the hold is written as spent at its worst
    case, so a daemon started afterwards cannot spend it again."""
    path = data_dir / "state.db"
    store = StateStore(path, busy_timeout_ms=50)
    budgets = budgets_of(store, clock, "ses_a", 10 * CENT)
    held = hold(budgets, 6 * CENT)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # e.g. an airlock command, for longer than the wait
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        budgets.record(held, service="llm")
    assert budgets.unrecorded() == [held]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        budgets.count_unrecorded(held)  # still locked: it stays waiting
    assert budgets.unrecorded() == [held]
    assert store.get_budget("ses_a") == (10 * CENT, 0, 0)
    other.rollback()
    other.close()
    budgets.count_unrecorded(held)
    assert budgets.unrecorded() == []
    assert store.get_budget("ses_a") == (10 * CENT, 6 * CENT, 0)
    assert hold(budgets, 4 * CENT).amount_nano == 4 * CENT  # this process: 4 left, as before
    store.close()
    restarted = Budgets(StateStore(path), clock)
    with pytest.raises(BudgetExhausted):
        hold(restarted, 5 * CENT)


class CountRefused(StateStore):
    """A state database that refuses the write counting money as spent (locked by another
    process between the daemon's two transactions)."""

    def count_spent(self, session_id: str, spent_nano: int) -> None:
        raise sqlite3.OperationalError("database is locked")


def test_a_refused_hold_whose_count_fails_is_still_402_and_stays_held(
    data_dir: Path, clock: FakeClock
) -> None:
    """The agent is told the budget stopped its call (not a server error), and the money
    stays taken, waiting to be counted, even after the database's figure is re-read."""
    ours = CountRefused(data_dir / "state.db")
    theirs = StateStore(data_dir / "state.db")
    budgets = budgets_of(ours, clock, "ses_a", 10 * CENT)
    spend(Budgets(theirs, clock), 7 * CENT)  # behind this process's back: 3 left for real
    stale = hold(budgets, 5 * CENT)  # it believes 10 are left
    with pytest.raises(BudgetExhausted, match="stopped before any of its answer was read"):
        budgets.record(stale, service="llm")
    assert budgets.unrecorded() == [stale]
    # Re-read from the database (3 left), the 5 waiting to be counted stay held: none left.
    with pytest.raises(BudgetExhausted):
        hold(budgets, 1)
    ours.close()
    theirs.close()


def test_holds_from_many_threads_never_overspend(store: StateStore, clock: FakeClock) -> None:
    budgets = budgets_of(store, clock, "ses_a", 7 * CENT)
    pricing = threading.Lock()
    assert race(24, lambda _: spend(budgets, CENT, pricing)) == 7
    assert store.get_budget("ses_a") == (7 * CENT, 0, 7 * CENT)
