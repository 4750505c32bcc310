"""A list that never ends (a server that always says another page follows, each empty)
is cut off with an error naming it, not followed until the core gives up: the thread
would hold the service, and Google's quota, for the whole timeout every time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airlock.errors import ConnectorError
from airlock.testing import run
from tests.gcal.conftest import MakeConnector
from tests.gcal.google_server import GoogleServer
from tests.gcal.test_calendar import WEEK


@pytest.mark.parametrize(("operation", "params"), [("list_events", WEEK), ("list_calendars", {})])
def test_pages_without_end_are_an_error(
    google: GoogleServer, make_connector: MakeConnector, operation: str, params: dict[str, Any]
) -> None:
    google.state.endless = True
    connector = make_connector()

    async def go() -> None:
        try:  # a bound on the test only: right, it ends in well under a second
            await asyncio.wait_for(connector.call(operation, params), 30)
        finally:
            await connector.close()

    with pytest.raises(ConnectorError, match="pages"):
        run(go())
    assert len(google.api_requests()) <= 100
