"""What a calendar write acts on, as the person's prompt shows it (``describe``), read
from the local Google server."""

from __future__ import annotations

import pytest

from airlock.plugin import Forbidden, NotFound
from airlock.testing import run
from airlock_gcal.connector import GcalConnector
from tests.gcal.conftest import ME, MakeConnector
from tests.gcal.google_server import GoogleServer
from tests.gcal.test_calendar import timed


def _describe(connector: GcalConnector, **params: object) -> str | None:
    async def go() -> str | None:
        try:
            parsed = connector.spec("respond").parse_params(params)
            return await connector.describe("respond", parsed)
        finally:
            await connector.close()

    return run(go())


def test_an_answer_to_an_invitation_is_described_by_its_event(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.add_event(ME, id="invite1", summary="Board dinner", **timed(4, 19))
    said = _describe(make_connector(write=True), id="invite1", response="declined")
    assert said == "event starting 2026-12-04T19:00:00+01:00, in calendar primary: “Board dinner”"
    assert [r[0] for r in google.api_requests("/events/invite1")] == ["GET"]


def test_a_missing_event_or_a_calendar_not_allowed_is_an_error(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    with pytest.raises(NotFound):
        _describe(make_connector(write=True), id="nothere", response="accepted")
    with pytest.raises(Forbidden):
        _describe(
            make_connector(write=True, calendars=[ME]),
            id="invite1",
            calendar="other@example.test",
            response="accepted",
        )
