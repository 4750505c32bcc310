"""The gcal connector passes the contract every Airlock connector passes."""

from __future__ import annotations

from typing import Any

import pytest

from airlock.testing import ConnectorContract, ConnectorFactory
from airlock_gcal.connector import GcalConnector
from tests.gcal.conftest import ME, MakeConnector
from tests.gcal.google_server import GoogleServer

WEEK = {"start": "2026-11-30T00:00:00+01:00", "end": "2026-12-07T00:00:00+01:00"}


class TestGcalContract(ConnectorContract):
    connector_class = GcalConnector
    read_params = {  # noqa: RUF012  # the contract's ClassVar
        "list_calendars": {},
        "list_events": {**WEEK, "limit": 10},
        "today": {},
        "upcoming": {"hours": 48},
        "get_event": {"id": "evt000001"},
        "free_busy": {**WEEK, "calendars": [ME]},
    }

    @pytest.fixture
    def connector_factory(
        self, google: GoogleServer, make_connector: MakeConnector
    ) -> ConnectorFactory:
        self.google = google
        google.add_event(
            ME,
            id="evt000001",
            summary="Planning",
            start={"dateTime": "2026-12-01T10:00:00+01:00", "timeZone": "Europe/Berlin"},
            end={"dateTime": "2026-12-01T11:00:00+01:00", "timeZone": "Europe/Berlin"},
        )

        async def make() -> GcalConnector:
            connector = make_connector()
            await connector.open()
            return connector

        return make

    def snapshot(self) -> Any:
        return repr(self.google.state.events)
