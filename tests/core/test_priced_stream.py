"""A streamed spend call's order of events: the budget decides before anything is sent,
the reservation is written while the request is on its way to the service, and no chunk
leaves before that write is durable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import pytest
from tests.core.gateway_fixtures import Answer, AskParams

from airlock.common.clock import FakeClock
from airlock.connector_host.client import ConnectorHost
from airlock.errors import (
    BudgetExhausted,
    ConnectorError,
    ServiceAnswerLost,
    ServiceOutOfCredit,
    ServiceRateLimited,
    ServiceRefused,
)
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
        sent = nano_usd(self.worst) <= ceiling_nano
        if sent:  # the real host starts the call as its quote goes out
            self.events.append("sent")
        yield Quote(usd=self.worst)
        if not sent:
            return
        await asyncio.sleep(0)  # the service answering: other calls run meanwhile
        yield {"text": "4"}
        yield {"text": "2"}
        yield Charge(usd=0.002)


class WatchedDisk(Budgets):
    """Budgets that note when their durable write starts and ends."""

    def __init__(self, store: StateStore, clock: FakeClock, events: list[str]) -> None:
        super().__init__(store, clock)
        self.events = events

    def record(self, reservation: Reservation, *, service: str) -> Reservation:
        self.events.append("recording")
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


def test_the_call_goes_out_before_the_reservation_is_written_and_nothing_leaves_before(
    store: StateStore,
) -> None:
    events: list[str] = []
    budgets = WatchedDisk(store, FakeClock(0), events)
    budgets.open("ses_a", 10 * CENT)
    chunks = asyncio.run(drain(PricedCalls(budgets), Host(events), events))
    assert chunks == [{"text": "4"}, {"text": "2"}]
    assert events == ["quoted", "sent", "recording", "durable", "relayed", "relayed"]
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


class EarlyReport(Host):
    """A service that reports usage as it goes (a running count in its first chunk), not
    only at the end."""

    async def priced(  # type: ignore[override]
        self, service: str, spec: OperationSpec, params: Mapping[str, Any], **kw: Any
    ) -> AsyncIterator[Quote | dict[str, Any] | Charge]:
        yield Quote(usd=self.worst)
        yield {"text": "4"}
        yield Charge(usd=0.0001)  # the cost so far: one token
        yield {"text": "2"}
        yield Charge(usd=0.002)


def test_a_stream_cut_short_is_counted_at_its_reservation_not_at_a_cost_reported_so_far(
    store: StateStore,
) -> None:
    """The agent hangs up after the first chunk: the service may go on answering (and
    billing) to max_tokens, so a running count reported on the way is not the cost."""
    budgets = Budgets(store, FakeClock(0))
    budgets.open("ses_a", 10 * CENT)
    facts: dict[str, Any] = {}

    async def hang_up() -> None:
        chunks = PricedCalls(budgets).stream(
            cast(ConnectorHost, EarlyReport([], worst=0.01)),
            SERVICE,
            SPEC,
            {"prompt": "?"},
            "ses_a",
            facts,
        )
        assert await anext(chunks) == {"text": "4"}
        assert await anext(chunks) == {"text": "2"}  # the running count came in between
        await chunks.aclose()  # type: ignore[attr-defined]

    asyncio.run(hang_up())
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano) == (CENT, 0)
    assert facts["cost_usd"] == 0.01


def test_a_whole_stream_is_counted_at_its_last_report(store: StateStore) -> None:
    budgets = Budgets(store, FakeClock(0))
    budgets.open("ses_a", 10 * CENT)
    host = EarlyReport([], worst=0.01)
    assert asyncio.run(drain(PricedCalls(budgets), host, [])) == [{"text": "4"}, {"text": "2"}]
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano) == (nano_usd("0.002"), 0)


class Failing(Host):
    """A service that fails after the call went out, with *error*, before any answer."""

    def __init__(self, error: Exception) -> None:
        super().__init__([])
        self.error = error

    async def priced(  # type: ignore[override]
        self, service: str, spec: OperationSpec, params: Mapping[str, Any], **kw: Any
    ) -> AsyncIterator[Quote | dict[str, Any] | Charge]:
        yield Quote(usd=self.worst)
        raise self.error


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize(
    ("error", "spent"),
    [
        (ConnectorError("the plugin's own failure, after the request went out"), CENT),
        (ServiceAnswerLost("cut off"), CENT),
        (ServiceRefused("HTTP 503"), 0),
        (ServiceOutOfCredit("no credit"), 0),
        (ServiceRateLimited("slow down"), 0),
    ],
    ids=["connector-error", "answer-lost", "refused", "out-of-credit", "rate-limited"],
)
def test_a_failed_call_costs_nothing_only_when_the_service_did_not_take_it(
    store: StateStore, error: Exception, spent: int, streamed: bool
) -> None:
    """Fail closed: a connector that fails without saying the service refused the call
    (an error of its own, a lost answer) may have been billed, so the call is counted at
    its reservation; only a refusal (or a service never reached) costs nothing."""
    budgets = Budgets(store, FakeClock(0))
    budgets.open("ses_a", 10 * CENT)
    facts: dict[str, Any] = {}
    calls, host = PricedCalls(budgets), cast(ConnectorHost, Failing(error))

    async def call() -> None:
        if streamed:
            async for _ in calls.stream(host, SERVICE, SPEC, {"prompt": "?"}, "ses_a", facts):
                pass
        else:
            await calls.run(host, SERVICE, SPEC, {"prompt": "?"}, "ses_a", facts)

    with pytest.raises(type(error)):
        asyncio.run(call())
    state = budgets.state("ses_a")
    assert state is not None
    assert (state.spent_nano, state.reserved_nano) == (spent, 0)
