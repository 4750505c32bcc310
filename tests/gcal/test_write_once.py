"""An approved create_event makes one event, however the request reaches Google: the
HTTP client sends a request again on its own when a connection drops before the answer
(httplib2 does, once), and the approval was for one event, one set of invitations."""

from __future__ import annotations

import pytest

from airlock.errors import InvalidInput
from tests.gcal.conftest import ME, MakeConnector
from tests.gcal.google_server import GoogleServer
from tests.gcal.test_calendar import call

EVENT = {
    "summary": "Board meeting",
    "start": "2026-12-02T10:00:00+01:00",
    "end": "2026-12-02T11:00:00+01:00",
    "attendees": ["ana@example.test"],
    "notify_attendees": True,
}


def test_an_insert_whose_answer_is_lost_makes_one_event(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.state.lost_answers = 1
    created = call(make_connector(write=True), "create_event", **EVENT)
    made = google.state.events[ME]
    assert [e["summary"] for e in made] == ["Board meeting"]
    assert created["id"] == made[0]["id"]
    assert created["attendees"][0]["email"] == "ana@example.test"


def test_each_approved_insert_is_an_event_of_its_own(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    first = call(make_connector(write=True), "create_event", **EVENT)
    second = call(make_connector(write=True), "create_event", **EVENT)
    assert first["id"] != second["id"]
    assert len(google.state.events[ME]) == 2


@pytest.mark.parametrize(
    "address",
    [
        "\u0430na@example.test",  # a Cyrillic "а": looks like ana@ in the prompt
        "ana\u200b@example.test",  # a zero-width space: shown as "ana @" or not at all
        "ana\u202e@example.test",  # a bidi override
        "ana\x1b@example.test",  # an escape
    ],
)
def test_an_attendee_address_is_what_the_approval_shows(
    google: GoogleServer, make_connector: MakeConnector, address: str
) -> None:
    """The person approves invitations to the addresses the prompt shows: an address
    that reads as another one (a look-alike letter, an invisible or control character)
    is refused before Google is asked."""
    with pytest.raises(InvalidInput, match="attendees"):
        call(make_connector(write=True), "create_event", **{**EVENT, "attendees": [address]})
    assert google.api_requests("/events") == []
