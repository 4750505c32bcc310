"""A call the core gives up (its timeout passed, the agent went away) is cancelled in the
connector host; the thread talking to Google must not go on and send it afterwards."""

from __future__ import annotations

import asyncio
import threading

import pytest

from airlock.testing import run
from airlock_gcal.google import pause
from tests.gcal.conftest import ME, TEAM, MakeConnector
from tests.gcal.google_server import GoogleServer
from tests.gcal.test_write_once import EVENT


class HeldSleep:
    """The injected sleep: waits until the test lets it go (a rate-limit pause that lasts
    past the core's timeout)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.entered.set()
        self.release.wait(60)


def test_a_write_given_up_during_a_rate_limit_pause_is_never_sent(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    held = HeldSleep()
    google.fail("/events", 429, "rateLimitExceeded", times=1, retry_after=20)
    connector = make_connector(write=True, sleep=held)

    async def go() -> None:
        call = asyncio.ensure_future(connector.call("create_event", EVENT))
        assert await asyncio.to_thread(held.entered.wait, 60)
        call.cancel()  # as the connector host does when the core's timeout passes
        for _ in range(3):
            await asyncio.sleep(0)  # the cancellation reaches the call
        held.release.set()  # Google's Retry-After has passed
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.get_running_loop().shutdown_default_executor()  # every thread ended

    run(go())
    assert google.state.events[ME] == []
    posts = [r for r in google.api_requests("/events") if r[0] == "POST"]
    assert len(posts) == 1  # the one refused with 429; never sent again


def test_the_next_call_starts_only_once_the_given_up_one_has_ended(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    """httplib2 is not thread-safe: a call cancelled while its thread still runs must not
    let the next call use the same connection beside it."""
    held = HeldSleep()
    google.fail("/calendarList", 429, "rateLimitExceeded", times=1)
    connector = make_connector(sleep=held)

    async def go() -> None:
        first = asyncio.ensure_future(connector.call("list_calendars", {}))
        assert await asyncio.to_thread(held.entered.wait, 60)
        first.cancel()
        second = asyncio.ensure_future(connector.call("list_calendars", {}))
        for _ in range(3):
            await asyncio.sleep(0)
        sent_while_held = len(google.api_requests("/calendarList"))
        held.release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        listed = await second
        assert sent_while_held == 1  # only the first call's, answered with 429
        assert [c["id"] for c in listed.model_dump()["calendars"]] == [ME, TEAM]

    run(go())
    assert len(google.api_requests("/calendarList")) == 2  # the 429, then the second call's


def test_a_rate_limit_pause_ends_when_the_call_is_given_up(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    """The real pause (no injected sleep): a Retry-After of 50 s must not hold the
    service's next calls for 50 s after the agent was told the call stopped."""
    google.fail("/events", 429, "rateLimitExceeded", times=1, retry_after=50)
    began = threading.Event()

    def sleep(seconds: float) -> None:
        began.set()
        pause(seconds)

    connector = make_connector(write=True, sleep=sleep)

    async def go() -> bool:
        call = asyncio.ensure_future(connector.call("create_event", EVENT))
        assert await asyncio.to_thread(began.wait, 60)
        call.cancel()
        done, _ = await asyncio.wait([call], timeout=20)  # ms when right, 50 s when not
        return call in done

    assert run(go()), "the pause outlived the call"
    assert google.state.events[ME] == []
