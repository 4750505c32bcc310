"""Fixtures of the gcal tests: a local Google with two calendars, and connectors pointed
at it through their ordinary settings (api_endpoint, token_uri, auth_uri)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airlock_gcal.connector import GcalConnector
from airlock_gcal.settings import GcalCredentials
from tests.gcal.google_server import READ, WRITE, GoogleServer

ME = "me@example.test"
TEAM = "team@group.calendar.google.com"


@pytest.fixture
def google() -> Iterator[GoogleServer]:
    server = GoogleServer()
    server.add_calendar(ME, "Me", "Europe/Berlin", primary=True)
    server.add_calendar(TEAM, "Team, passcode: 482913", "America/New_York")
    yield server
    server.close()


class Sleeps(list[float]):
    """The injected sleep: records each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


MakeConnector = Callable[..., GcalConnector]


@pytest.fixture
def make_connector(google: GoogleServer) -> MakeConnector:
    def make(
        *, write: bool = False, sleep: Callable[[float], None] | None = None, **settings: Any
    ) -> GcalConnector:
        client_id, secret = google.client()
        refresh = google.grant(client_id, [READ, WRITE] if write else [READ])
        parsed = GcalConnector.parse_settings(
            google.settings(write=write, **settings), service="cal"
        )
        credentials = GcalCredentials.model_validate(
            {"client_id": client_id, "client_secret": secret, "refresh_token": refresh}
        )
        return GcalConnector(
            parsed, credentials, service="cal", sleep=Sleeps() if sleep is None else sleep
        )

    return make
