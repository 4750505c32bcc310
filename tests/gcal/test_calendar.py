"""The gcal connector against a local server speaking Calendar API v3 and OAuth 2.0."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airlock.common.clock import FakeClock
from airlock.errors import (
    ConnectorAuthError,
    ConnectorError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
)
from airlock.testing import run
from airlock_gcal.connector import GcalConnector
from tests.gcal.conftest import ME, TEAM, MakeConnector, Sleeps
from tests.gcal.google_server import WRITE, GoogleServer

WEEK = {"start": "2026-11-30T00:00:00+01:00", "end": "2026-12-07T00:00:00+01:00"}


def call(connector: GcalConnector, operation: str, **params: Any) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        try:
            result = await connector.call(operation, params)
            return result.model_dump(mode="json")
        finally:
            await connector.close()

    return run(go())


def timed(day: int, hour: int, minutes: int = 60, zone: str = "+01:00") -> dict[str, Any]:
    start = datetime.fromisoformat(f"2026-12-{day:02d}T{hour:02d}:00:00{zone}")
    return {
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat()},
    }


def fill(google: GoogleServer, count: int) -> None:
    """*count* events spread over the week of 2026-11-30, added out of order."""
    for n in reversed(range(count)):
        start = datetime(2026, 11, 30, 7, tzinfo=UTC) + timedelta(minutes=17 * n)
        google.add_event(
            ME,
            summary=f"meeting {n}",
            start={"dateTime": start.isoformat()},
            end={"dateTime": (start + timedelta(minutes=15)).isoformat()},
        )


def test_list_events_follows_every_page_and_orders_by_start(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    fill(google, 300)
    listed = call(make_connector(), "list_events", **WEEK, limit=1000)
    assert [e["summary"] for e in listed["events"]] == [f"meeting {n}" for n in range(300)]
    assert listed["truncated"] is False
    pages = google.api_requests("/events")
    assert len(pages) == 2
    assert pages[0][2]["singleEvents"] == "true"
    assert pages[0][2]["orderBy"] == "startTime"
    assert pages[1][2]["pageToken"] == "250"


def test_list_events_stops_at_the_limit_and_says_more_exist(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    fill(google, 300)
    listed = call(make_connector(), "list_events", **WEEK, limit=20)
    assert len(listed["events"]) == 20
    assert listed["truncated"] is True
    assert len(google.api_requests("/events")) == 1, "one page of limit+1 tells it all"


def test_recurring_events_are_expanded_into_instances(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.add_event(
        ME,
        id="standup",
        summary="Standup",
        recurrence=["RRULE:FREQ=DAILY;COUNT=10"],
        start={"dateTime": "2026-11-27T09:30:00+01:00", "timeZone": "Europe/Berlin"},
        end={"dateTime": "2026-11-27T09:45:00+01:00", "timeZone": "Europe/Berlin"},
    )
    listed = call(make_connector(), "list_events", **WEEK)
    instances = listed["events"]
    assert [e["start"] for e in instances] == [
        f"2026-{d}T09:30:00+01:00"
        for d in ("11-30", "12-01", "12-02", "12-03", "12-04", "12-05", "12-06")
    ]
    assert {e["recurring_event_id"] for e in instances} == {"standup"}
    assert instances[0]["id"] == "standup_20261130T083000Z"
    assert instances[0]["time_zone"] == "Europe/Berlin"


def test_all_day_and_events_in_other_zones_keep_their_dates_and_offsets(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.add_event(
        ME, summary="Holiday", start={"date": "2026-12-03"}, end={"date": "2026-12-05"}
    )
    google.add_event(
        ME,
        summary="NY call",
        start={"dateTime": "2026-12-02T09:00:00-05:00", "timeZone": "America/New_York"},
        end={"dateTime": "2026-12-02T10:00:00-05:00", "timeZone": "America/New_York"},
    )
    google.add_event(ME, summary="UTC sync", **timed(1, 8, zone="+00:00"))
    google.add_event(ME, summary="Tokyo", **timed(1, 9, zone="+09:00"))
    events = {e["summary"]: e for e in call(make_connector(), "list_events", **WEEK)["events"]}
    assert events["Holiday"]["all_day"] is True
    assert (events["Holiday"]["start"], events["Holiday"]["end"]) == ("2026-12-03", "2026-12-05")
    assert events["NY call"]["start"] == "2026-12-02T09:00:00-05:00"
    assert events["NY call"]["time_zone"] == "America/New_York"
    assert events["NY call"]["all_day"] is False
    assert events["UTC sync"]["start"] == "2026-12-01T08:00:00Z"
    assert events["Tokyo"]["end"] == "2026-12-01T10:00:00+09:00"
    order = [e["summary"] for e in call(make_connector(), "list_events", **WEEK)["events"]]
    assert order.index("Tokyo") < order.index("UTC sync") < order.index("NY call")


def test_times_without_an_offset_or_backwards_are_refused(make_connector: MakeConnector) -> None:
    with pytest.raises(InvalidInput) as naive:
        call(make_connector(), "list_events", start="2026-12-01T00:00:00", end=WEEK["end"])
    assert naive.value.field == "start"
    with pytest.raises(InvalidInput, match="end must be after start"):
        call(make_connector(), "list_events", start=WEEK["end"], end=WEEK["start"])


def test_today_and_upcoming_use_the_clock(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.add_event(ME, summary="early", **timed(2, 0, zone="+01:00"))
    google.add_event(ME, summary="lunch", **timed(2, 12, zone="+01:00"))
    google.add_event(ME, summary="tomorrow", **timed(3, 12, zone="+01:00"))
    clock = FakeClock(datetime(2026, 12, 2, 10, tzinfo=UTC).timestamp())  # 11:00 in Berlin
    connector = make_connector()
    connector._clock = clock
    today = call(connector, "today", time_zone="Europe/Berlin")
    assert [e["summary"] for e in today["events"]] == ["early", "lunch"]
    query = google.api_requests("/events")[-1][2]
    assert query["timeMin"] == "2026-12-02T00:00:00+01:00"
    assert query["timeMax"] == "2026-12-03T00:00:00+01:00"
    upcoming = call(connector, "upcoming", hours=30)
    assert [e["summary"] for e in upcoming["events"]] == ["lunch", "tomorrow"]


def test_get_event_and_a_missing_one(google: GoogleServer, make_connector: MakeConnector) -> None:
    google.add_event(ME, id="abc123", summary="Dentist", location="Main St 1", **timed(2, 15))
    got = call(make_connector(), "get_event", id="abc123")
    assert (got["summary"], got["location"], got["calendar"]) == ("Dentist", "Main St 1", "primary")
    with pytest.raises(NotFound, match="Not Found"):
        call(make_connector(), "get_event", id="nosuchevent")
    with pytest.raises(InvalidInput) as bad:
        call(make_connector(), "get_event", id="../../users/me/calendarList")
    assert bad.value.field == "id"


def test_free_busy_reports_busy_times_and_unknown_calendars(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.add_event(TEAM, summary="Offsite", **timed(1, 9, minutes=120, zone="-05:00"))
    found = call(make_connector(), "free_busy", **WEEK, calendars=[TEAM, "nobody@example.test"])
    team, nobody = found["calendars"]
    assert team["busy"] == [
        {"start": "2026-12-01T09:00:00-05:00", "end": "2026-12-01T11:00:00-05:00"}
    ]
    assert nobody["errors"] == ["notFound"]


def test_the_allow_list_refuses_other_calendars_before_asking_google(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    connector = make_connector(calendars=[ME])
    listed = call(connector, "list_calendars")
    assert [c["id"] for c in listed["calendars"]] == [ME]
    before = len(google.state.requests)
    for operation, params in [
        ("list_events", {**WEEK, "calendar": TEAM}),
        ("get_event", {"id": "x1", "calendar": TEAM}),
        ("free_busy", {**WEEK, "calendars": [ME, TEAM]}),
        ("list_events", WEEK),  # "primary" is not in the list either
    ]:
        with pytest.raises(Forbidden, match="not in service 'cal'"):
            call(make_connector(calendars=[ME]), operation, **params)
    assert len(google.state.requests) == before


def test_settings_refuse_unknown_keys_and_clear_text_addresses() -> None:
    with pytest.raises(InvalidInput) as unknown:
        GcalConnector.parse_settings({"calendar": ["x"]}, service="cal")
    assert unknown.value.field == "services.cal.calendar"
    with pytest.raises(InvalidInput) as clear:
        GcalConnector.parse_settings({"token_uri": "http://tokens.example.test/"}, service="cal")
    assert clear.value.field == "services.cal.token_uri"
    local = GcalConnector.parse_settings({"api_endpoint": "http://127.0.0.1:9/cal"}, service="c")
    assert local.model_dump()["api_endpoint"] == "http://127.0.0.1:9/cal/"
    assert local.model_dump()["write"] is False


# -- tokens ----------------------------------------------------------------------------------


def test_the_access_token_is_reused_until_google_rejects_it_then_refreshed_once(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    connector = make_connector()

    async def three_reads() -> None:
        await connector.call("list_calendars", {})
        await connector.call("list_calendars", {})
        google.state.tokens.clear()  # Google forgot the access token (expired early, revoked)
        await connector.call("list_calendars", {})
        await connector.close()

    run(three_reads())
    assert len(google.state.token_requests) == 2
    statuses = [r[1] for r in google.api_requests()]
    assert len(statuses) == 4, "three reads, one retried after the refresh"


def test_an_access_token_is_refreshed_before_it_expires(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.state.expires_in = 60  # inside google-auth's refresh margin: stale at once
    connector = make_connector()

    async def two_reads() -> None:
        await connector.call("list_calendars", {})
        await connector.call("list_calendars", {})

    run(two_reads())
    assert len(google.state.token_requests) == 2
    assert len(google.api_requests()) == 2, "no request went out with an expired token"


def test_a_401_after_the_refresh_is_not_retried_again(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.fail("/calendarList", 401, "authError", times=10)
    with pytest.raises(ConnectorAuthError, match="rejected the access token"):
        call(make_connector(), "list_calendars")
    assert len(google.api_requests()) == 2
    assert len(google.state.token_requests) == 2


def test_a_revoked_grant_says_to_authorise_again_and_check_reports_it(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    for grant in google.state.grants.values():
        grant.revoked = True
    with pytest.raises(ConnectorAuthError, match="invalid_grant") as refused:
        call(connector, "list_calendars")
    assert refused.value.hint == "run `airlock gcal auth cal` again"
    assert connector.problem is not None

    async def probe() -> Any:
        return await make_connector_check(connector)

    checked = run(probe())
    assert checked.ok is False
    assert "airlock gcal auth cal" in checked.summary


async def make_connector_check(connector: GcalConnector) -> Any:
    try:
        return await connector.check()
    finally:
        await connector.close()


def test_google_out_of_reach_is_a_service_error_not_a_crash(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    google.stop()
    try:
        with pytest.raises(ConnectorError, match="cannot reach Google: "):
            call(connector, "list_calendars")
    finally:
        google.start()
    assert call(connector, "list_calendars")["calendars"], "it recovers once Google is back"


def test_secrets_stay_out_of_errors(google: GoogleServer, make_connector: MakeConnector) -> None:
    connector = make_connector()
    secrets = [
        connector._secrets.client_secret.get_secret_value(),
        connector._secrets.refresh_token.get_secret_value(),
    ]
    for grant in google.state.grants.values():
        grant.revoked = True
    with pytest.raises(ConnectorAuthError) as refused:
        call(connector, "list_calendars")
    shown = f"{refused.value} {refused.value.hint} {refused.value.to_dict()} {connector!r}"
    assert not [s for s in secrets if s in shown]


def test_a_token_google_quotes_back_is_withheld_from_the_error(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    """An answer quoting the request's ``Authorization`` header (a debugging proxy on the
    way) reaches the agent without the access token in it."""
    connector = make_connector()
    google.fail("/calendarList", 400, "badRequest", echo=True)
    with pytest.raises(InvalidInput) as refused:
        call(connector, "list_calendars")
    issued = list(google.state.tokens)
    assert issued, "the request went with an access token"
    assert "injected badRequest for Bearer [secret]" in refused.value.message
    shown = json.dumps(refused.value.to_dict())
    assert not [token for token in issued if token in shown]


# -- rate limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(403, "rateLimitExceeded"), (429, "rateLimitExceeded"), (403, "userRateLimitExceeded")],
)
def test_rate_limits_are_waited_out_with_growing_pauses(
    google: GoogleServer, make_connector: MakeConnector, status: int, reason: str
) -> None:
    fill(google, 3)
    sleeps = Sleeps()
    google.fail("/events", status, reason, times=3)
    listed = call(make_connector(sleep=sleeps), "list_events", **WEEK)
    assert len(listed["events"]) == 3
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(google.api_requests("/events")) == 4


def test_retry_after_is_honoured_and_giving_up_is_a_rate_limited_error(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    sleeps = Sleeps()
    google.fail("/calendarList", 429, "rateLimitExceeded", times=1, retry_after=7)
    call(make_connector(sleep=sleeps), "list_calendars")
    assert sleeps == [7.0]
    sleeps.clear()
    google.fail("/calendarList", 403, "rateLimitExceeded", times=50)
    with pytest.raises(RateLimited, match="rate limiting"):
        call(make_connector(sleep=sleeps), "list_calendars")
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


def test_other_403s_are_not_retried(google: GoogleServer, make_connector: MakeConnector) -> None:
    sleeps = Sleeps()
    google.fail("/calendarList", 403, "forbidden", times=1)
    with pytest.raises(Forbidden, match="injected forbidden"):
        call(make_connector(sleep=sleeps), "list_calendars")
    assert sleeps == []


# -- writes -----------------------------------------------------------------------------------


def test_writes_need_write_enabled(google: GoogleServer, make_connector: MakeConnector) -> None:
    with pytest.raises(Forbidden, match="read-only"):
        call(
            make_connector(),
            "create_event",
            summary="x",
            start="2026-12-02T10:00:00+01:00",
            end="2026-12-02T11:00:00+01:00",
        )
    assert google.api_requests() == []


def test_a_read_only_grant_is_refused_by_google_too(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    """write: true with a grant made before it: Google itself says no, and the hint says why."""
    connector = make_connector()
    connector.settings = connector.settings.model_copy(update={"write": True})
    with pytest.raises(ConnectorAuthError, match="invalid_scope") as refused:
        call(connector, "create_event", summary="x", start="2026-12-02", end="2026-12-03")
    assert refused.value.hint == "run `airlock gcal auth cal` again"
    assert google.state.events[ME] == []


def test_create_event_keeps_zone_and_all_day(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    created = call(
        make_connector(write=True),
        "create_event",
        summary="Review",
        start="2026-12-02T10:00:00-05:00",
        end="2026-12-02T11:00:00-05:00",
        time_zone="America/New_York",
        attendees=["ana@example.test"],
        location="Room 1",
    )
    assert created["start"] == "2026-12-02T10:00:00-05:00"
    assert created["time_zone"] == "America/New_York"
    stored = google.state.events[ME][-1]
    assert stored["start"] == {
        "dateTime": "2026-12-02T10:00:00-05:00",
        "timeZone": "America/New_York",
    }
    assert stored["attendees"][0]["email"] == "ana@example.test"
    insert = google.api_requests("/events")[-1]
    assert insert[0] == "POST"
    assert insert[2]["sendUpdates"] == "none"
    day = call(
        make_connector(write=True),
        "create_event",
        summary="Off",
        start="2026-12-24",
        end="2026-12-25",
    )
    assert day["all_day"] is True
    assert google.state.events[ME][-1]["start"] == {"date": "2026-12-24"}
    with pytest.raises(InvalidInput, match="both be times or both be dates"):
        call(
            make_connector(write=True),
            "create_event",
            summary="x",
            start="2026-12-24",
            end="2026-12-25T10:00:00Z",
        )


def test_respond_changes_only_my_answer(
    google: GoogleServer, make_connector: MakeConnector
) -> None:
    google.add_event(
        ME,
        id="invite1",
        summary="Party",
        attendees=[
            {"email": "host@example.test", "organizer": True, "responseStatus": "accepted"},
            {"email": ME, "self": True, "responseStatus": "needsAction"},
            {"email": "bob@example.test", "responseStatus": "declined"},
        ],
        **timed(4, 19),
    )
    answered = call(make_connector(write=True), "respond", id="invite1", response="tentative")
    assert [a["response"] for a in answered["attendees"]] == ["accepted", "tentative", "declined"]
    patch = google.api_requests("/events/invite1")[-1]
    assert patch[0] == "PATCH"
    google.add_event(ME, id="mine1", summary="Solo", **timed(4, 8))
    with pytest.raises(InvalidInput, match="no invitation"):
        call(make_connector(write=True), "respond", id="mine1", response="declined")


def test_event_text_is_marked_untrusted_for_the_redaction_policy() -> None:
    from airlock.default_plugins._policies import text_fields
    from airlock_gcal.models import CalendarList, EventList

    assert {"summary", "description", "location", "name"} <= text_fields(EventList)
    assert {"summary", "description"} <= text_fields(CalendarList)
    assert WRITE  # the write scope constant is what the server checks
