"""A streamed spend call's order of events: the budget decides before anything is sent,
the request goes out while the reservation is written, and no chunk leaves before that
write is durable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import pytest
from tests.core.gateway_fixtures import Answer, AskParams

from airlock.common.clock import FakeClock
from airlock.connector_host.client import ConnectorHost
from airlock.errors import BudgetExhausted
from airlock.framework.connectors import Access, OperationSpec, operation
from airlock.framework.spending import Charge, PricedConnector, Quote, SpendSettings, nano_usd
from airlock.gateway.budgets import Budgets, Reservation
from airlock.gateway.priced_calls import PricedCalls
from airlock.gateway.services import Service
from airlock.state.store import StateStore

CENT = nano_usd("0.01")


class Oracle(PricedConnector):
    name = "oracle"
    title = "A priced service"

    @operation(access=Access.SPEND, params=AskParams, result=Answer, description="Ask.")
    async def ask(self, params: AskParams) -> Answer:
        return Answer(text="42")


class Host:
    """The connector host as the core sees it: a quote, then (within the ceiling the core
    holds) the stream's items. It records the ceiling it was given."""

    def __init__(self, events: list[str], worst: float = 0.01) -> None:
        self.events = events
        self.worst = worst
        self.ceilings: list[int] = []

    async def priced(
        self,
        service: str,
        spec: OperationSpec,
        params: Mapping[str, Any],
        *,
        ceiling_nano: int,
        streamed: bool,
        budget: object = None,
    ) -> AsyncIterator[Quote | dict[str, Any] | Charge]:
        self.ceilings.append(ceiling_nano)
        self.events.append("quoted")
        yield Quote(usd=self.worst)
        if nano_usd(self.worst) > ceiling_nano:
            return
        self.events.append("sent")
        yield {"text": "4"}
        yield {"text": "2"}
        yield Charge(usd=0.002)


class SlowDisk(Budgets):
    """Budgets whose durable write waits until the test lets it finish."""

    def __init__(self, store: StateStore, clock: FakeClock, events: list[str]) -> None:
        super().__init__(store, clock)
        self.events = events
        self.written = threading.Event()
        self.recording = threading.Event()

    def record(self, reservation: Reservation, *, service: str) -> Reservation:
        self.events.append("recording")
        self.recording.set()
        assert self.written.wait(10)
        done = super().record(reservation, service=service)
        self.events.append("durable")
        return done


@pytest.fixture
def store(tmp_path: Any) -> StateStore:
    return StateStore(tmp_path / "state.db")


SERVICE = Service("llm", Oracle, SpendSettings(max_usd=1))
SPEC = Oracle.spec("ask")


async def drain(calls: PricedCalls, host: Host, events: list[str]) -> list[dict[str, Any]]:
    facts: dict[str, Any] = {}
    got = []
    async for chunk in calls.stream(
        cast(ConnectorHost, host), SERVICE, SPEC, {"prompt": "?"}, "ses_a", facts
    ):
        events.append("relayed")
        got.append(chunk)
    return got


def test_the_call_goes_out_while_the_reservation_is_written_and_nothing_leaves_before(
    store: StateStore,
) -> None:
    events: list[str] = []
    budgets = SlowDisk(store, FakeClock(0), events)
    budgets.open("ses_a", 10 * CENT)

    async def main() -> list[dict[str, Any]]:
        relay = asyncio.ensure_future(drain(PricedCalls(budgets), Host(events), events))
        for _ in range(100_000):  # let the call run up to the upstream request
            if "sent" in events and budgets.recording.is_set():
                break
            await asyncio.sleep(0)
        assert "sent" in events, "the call waited for the disk before going out"
        assert budgets.recording.is_set()
        for _ in range(100):  # the chunks are there: a relay that did not wait would run
            await asyncio.sleep(0)
        assert "relayed" not in events, "a chunk left before the reservation was durable"
        budgets.written.set()
        return await relay

    chunks = asyncio.run(main())
    assert chunks == [{"text": "4"}, {"text": "2"}]
    assert events.index("sent") < events.index("durable") < events.index("relayed")
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano) == (nano_usd("0.002"), 0)


def test_a_call_the_budget_cannot_cover_is_never_sent(store: StateStore) -> None:
    events: list[str] = []
    budgets = Budgets(store, FakeClock(0))
    budgets.open("ses_a", CENT)
    host = Host(events, worst=0.02)
    with pytest.raises(BudgetExhausted):
        asyncio.run(drain(PricedCalls(budgets), host, events))
    assert events == ["quoted"]
    assert host.ceilings == [CENT], "the host was not told what the budget can cover"
    assert store.open_reservations() == []
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.left_nano, state.reserved_nano) == (CENT, 0), "the hold was not given back"


def test_a_second_call_waits_for_the_first_ones_quote_and_then_gets_what_is_left(
    store: StateStore,
) -> None:
    """While the first call is priced it holds all that is left; the second is priced
    after it, within what the first did not reserve, and both run."""
    events: list[str] = []
    budgets = Budgets(store, FakeClock(0))
    budgets.open("ses_a", 3 * CENT)
    host = Host(events, worst=0.01)

    async def main() -> list[list[dict[str, Any]]]:
        calls = PricedCalls(budgets)
        return list(await asyncio.gather(drain(calls, host, events), drain(calls, host, events)))

    assert asyncio.run(main()) == [[{"text": "4"}, {"text": "2"}]] * 2
    assert host.ceilings == [3 * CENT, 2 * CENT]
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano) == (2 * nano_usd("0.002"), 0)
