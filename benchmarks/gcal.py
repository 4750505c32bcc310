"""Google Calendar figures: ``list_events`` for a week of 500 events, against gcsa called
directly in the same run.

A local server speaking Calendar API v3 and OAuth 2.0 (the test suite's) holds 500
events in one week; Google's page size is 250, so both sides fetch two pages. Timed, as
the median of ``--runs`` warm runs (the access token already fetched):

- ``airlock``: the gcal connector's ``list_events(start, end, limit=500)`` through
  ``Connector.call`` (parameter validation, a worker thread, gcsa, conversion to the
  result model and its validation);
- ``gcsa``: ``GoogleCalendar.get_events(..., single_events=True, order_by="startTime")``
  listed in full, on a service built the same way (gcsa has no endpoint option).

Requests are counted at the server. Target: airlock within 1.2x of gcsa.
Prints one JSON object.

The two are interleaved, one call each in turn. With 15 of each, the ratio of medians
spread 1.0-1.5 between runs minutes apart on this shared VM (2026-12-03, the same
commit; a call takes 70-120 ms, and which side a slow spell lands on decides); with 41
it spread 1.09-1.17.

    uv run python benchmarks/gcal.py [--runs 41]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the local Google lives with the tests

from tests.gcal.google_server import READ, GoogleServer  # noqa: E402

from airlock_gcal.connector import GcalConnector  # noqa: E402
from airlock_gcal.settings import GcalCredentials  # noqa: E402

EVENTS = 500
WEEK_START = datetime(2026, 11, 30, tzinfo=UTC)
WEEK_END = WEEK_START + timedelta(days=7)


def seed(google: GoogleServer) -> None:
    google.add_calendar("me@example.test", "Me", "Europe/Berlin", primary=True)
    step = timedelta(seconds=7 * 86400 // EVENTS)  # whole seconds, as Google stores them
    for n in range(EVENTS):
        start = WEEK_START + n * step
        google.add_event(
            "me@example.test",
            summary=f"meeting {n}",
            description="Agenda: figures, plans. Dial-in in the invitation.",
            location="Room 4",
            attendees=[{"email": "ana@example.test"}, {"email": "me@example.test", "self": True}],
            start={"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
            end={"dateTime": (start + timedelta(minutes=10)).isoformat()},
        )


def gcsa_direct(google: GoogleServer, client_id: str, secret: str, refresh: str) -> Any:
    from gcsa.google_calendar import GoogleCalendar
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    creds = Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=refresh,
        token_uri=f"{google.url}/token",
        client_id=client_id,
        client_secret=secret,
        scopes=[READ],
    )
    calendar = GoogleCalendar(credentials=creds)
    calendar.service = build(
        "calendar",
        "v3",
        credentials=creds,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": google.api_endpoint},
    )
    return calendar


def measure(google: GoogleServer, runs: int, once: Callable[[], int]) -> dict[str, Any]:
    once()  # warm: token fetched, code paths loaded
    samples, requests = [], []
    for _ in range(runs):
        before = len(google.state.requests)
        started = time.perf_counter()
        found = once()
        samples.append((time.perf_counter() - started) * 1000)
        requests.append(len(google.state.requests) - before)
        assert found == EVENTS, found
    return {
        "median_ms": round(statistics.median(samples), 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
        "requests_per_call": max(requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=41)
    runs = parser.parse_args().runs
    google = GoogleServer()
    try:
        seed(google)
        client_id, secret = google.client()
        refresh = google.grant(client_id)
        credentials = GcalCredentials.model_validate(
            {"client_id": client_id, "client_secret": secret, "refresh_token": refresh}
        )
        settings = GcalConnector.parse_settings(google.settings(), service="bench")
        connector = GcalConnector(settings, credentials, service="bench")
        params = {"start": WEEK_START.isoformat(), "end": WEEK_END.isoformat(), "limit": EVENTS}
        loop = asyncio.new_event_loop()

        def airlock_once() -> int:
            result = loop.run_until_complete(connector.call("list_events", params))
            return len(getattr(result, "events"))  # noqa: B009  # a BaseModel to mypy

        calendar = gcsa_direct(google, client_id, secret, refresh)

        def gcsa_once() -> int:
            found = calendar.get_events(
                time_min=WEEK_START,
                time_max=WEEK_END,
                order_by="startTime",
                single_events=True,
                calendar_id="primary",
            )
            return len(list(found))

        # Interleave the two so a busy machine slows both alike.
        a_samples: list[dict[str, Any]] = []
        g_samples: list[dict[str, Any]] = []
        for _ in range(runs):
            a_samples.append(measure(google, 1, airlock_once))
            g_samples.append(measure(google, 1, gcsa_once))
        airlock = summary(a_samples)
        direct = summary(g_samples)
        loop.run_until_complete(connector.close())
        loop.close()
        figures = {
            "benchmark": "gcal.list_events",
            "events": EVENTS,
            "page_size": 250,
            "runs": runs,
            "airlock": airlock,
            "gcsa": direct,
            "ratio": round(airlock["median_ms"] / direct["median_ms"], 3),
            "target_ratio": 1.2,
        }
        print(json.dumps(figures, indent=2))
    finally:
        google.close()


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    medians = [s["median_ms"] for s in samples]
    return {
        "median_ms": round(statistics.median(medians), 2),
        "min_ms": round(min(medians), 2),
        "max_ms": round(max(medians), 2),
        "requests_per_call": max(s["requests_per_call"] for s in samples),
    }


if __name__ == "__main__":
    main()
