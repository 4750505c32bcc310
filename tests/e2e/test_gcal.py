"""Google Calendar through a real daemon: `airlock gcal auth` stores the grant, an agent
reads a week, a write runs only with its own approval and only once, a revoked grant
shows in `airlock status`. Google is a local server speaking Calendar v3 and OAuth 2.0."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import Airlock, remember
from terminal import Terminal
from tests.gcal.google_server import GoogleServer

ME = "me@example.test"
WEEK = {"start": "2026-11-30T00:00:00+01:00", "end": "2026-12-07T00:00:00+01:00"}
BROWSER = Path(__file__).with_name("fake_browser.py")


@pytest.fixture
def google() -> Iterator[GoogleServer]:
    server = GoogleServer()
    server.add_calendar(ME, "Me", "Europe/Berlin", primary=True)
    for day in range(7):
        start = datetime(2026, 11, 30, 9, tzinfo=UTC) + timedelta(days=day)
        server.add_event(
            ME,
            summary=f"day {day}",
            description="Zoom: https://zoom.us/j/81234567890?pwd=Zx9secret  Passcode: 482913",
            start={"dateTime": start.isoformat()},
            end={"dateTime": (start + timedelta(hours=1)).isoformat()},
        )
    yield server
    for secret in [*server.state.tokens, *server.state.grants, *server.state.clients.values()]:
        remember(secret)  # none may appear in a daemon log or audit line (conftest's scan)
    server.close()


def lasting_code(airlock: Airlock) -> str:
    """A code still good 30 s from now: the command reads it only after the browser flow
    (the phone's next code may be for a step that ends in 5 s)."""
    for _ in range(2):
        airlock.phone.code()
    return airlock.phone.code()


def gcal_auth(
    airlock: Airlock, client_file: Path, *, timeout: int = 60, argv_seen: Path | None = None
) -> subprocess.CompletedProcess[str]:
    args = ["gcal", "auth", "calendar", "--client-secrets", str(client_file)]
    args += ["--timeout", str(timeout)]
    seen = {"FAKE_BROWSER_ARGV": str(argv_seen)} if argv_seen else {}
    return subprocess.run(
        [sys.executable, "-m", "airlock", *args],
        env={**airlock.env, "BROWSER": f"{sys.executable} {BROWSER} %s", **seen},
        input=lasting_code(airlock) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def op(agent: httpx.Client, token: str, operation: str, **params: Any) -> httpx.Response:
    return agent.post(
        f"/v1/ops/calendar/{operation}",
        json={"params": params},
        headers={"Authorization": f"Bearer {token}"},
    )


def calendar_daemon(
    start_airlock: Callable[..., Airlock], google: GoogleServer, tmp_path: Path
) -> tuple[Airlock, subprocess.CompletedProcess[str], str]:
    """A daemon with service ``calendar`` (writes allowed) on the local Google server,
    what `airlock gcal auth` said authorising it, and the client secret it was given."""
    client_id, secret = google.client()
    client_file = tmp_path / "client_secret.json"
    client_file.write_text(
        json.dumps({"installed": {"client_id": client_id, "client_secret": secret}})
    )
    airlock = start_airlock(
        {"services": {"calendar": {"connector": "gcal", "write": True, **google.settings()}}}
    )
    argv_seen = tmp_path / "browser-argv"
    authorised = gcal_auth(airlock, client_file, argv_seen=argv_seen)
    assert authorised.returncode == 0, authorised.stderr
    # The browser's command line is every local user's to read: the sign-in address
    # (this run's state and PKCE challenge) must not be on it, only a private page.
    (command,) = argv_seen.read_text().splitlines()
    assert "file://" in command, command
    assert "state=" not in command, command
    assert "code_challenge" not in command, command
    assert "state=" in authorised.stderr  # printed to the person's own terminal
    return airlock, authorised, secret


def test_auth_read_a_week_and_a_write_once_with_its_approval(
    start_airlock: Callable[..., Airlock], google: GoogleServer, tmp_path: Path
) -> None:
    airlock, authorised, secret = calendar_daemon(start_airlock, google, tmp_path)
    assert "saved client_id, client_secret, refresh_token for calendar" in authorised.stdout
    assert f"connected: 1 calendar(s), primary {ME}" in authorised.stdout
    assert f"{google.url}/auth?" in authorised.stderr, "the address is printed"
    (refresh,) = google.state.grants
    remember(refresh)
    assert google.state.grants[refresh].scopes[-1].endswith("calendar.events")
    assert refresh.encode() not in airlock.stored_bytes()
    assert airlock.host_vault()["calendar"]["refresh_token"] == refresh
    assert refresh not in authorised.stdout + authorised.stderr

    with airlock.client() as agent:
        read = airlock.session(agent, services=["calendar"], reason="plan my week")["token"]
        week = op(agent, read, "list_events", **WEEK)
        assert week.status_code == 200, week.text
        events = week.json()["result"]["events"]
        assert [e["summary"] for e in events] == [f"day {d}" for d in range(7)]
        text = json.dumps(events)
        assert "482913" not in text, "meeting passcodes are masked"
        assert "Zx9secret" not in text

        new = {
            "summary": "Dentist",
            "start": "2026-12-03T15:00:00+01:00",
            "end": "2026-12-03T16:00:00+01:00",
        }
        refused = op(agent, read, "create_event", **new)
        assert refused.status_code == 403
        assert google.state.events[ME][-1]["summary"] == "day 6", "nothing was created"

        operation = {"service": "calendar", "name": "create_event", "params": new}
        write = airlock.session(
            agent, services=["calendar"], operation=operation, reason="book the dentist"
        )["token"]
        other = op(agent, write, "create_event", **{**new, "summary": "Something else"})
        assert other.json()["error"]["code"] == "approval_required"
        done = op(agent, write, "create_event", **new)
        assert done.status_code == 200, done.text
        assert done.json()["result"]["start"] == "2026-12-03T15:00:00+01:00"
        twice = op(agent, write, "create_event", **new)
        assert twice.json()["error"]["code"] == "approval_required"
        assert [e["summary"] for e in google.state.events[ME]].count("Dentist") == 1

        google.state.grants[refresh].revoked = True
        google.state.tokens.clear()
        gone = op(agent, read, "list_calendars")
        assert gone.status_code == 502
        assert "airlock gcal auth calendar" in gone.json()["error"]["hint"]

    status = airlock.cli("status", "--json")
    health = json.loads(status.stdout)["daemon"]["service_health"]
    assert {k: health[0][k] for k in ("name", "ok")} == {"name": "calendar", "ok": False}
    assert "invalid_grant" in health[0]["detail"]
    assert "UNHEALTHY" in airlock.cli("status").stdout
    listed = {s["name"]: s for s in json.loads(airlock.cli("services", "--json").stdout)}
    assert listed["calendar"]["health"].startswith("credentials refused: Google no longer")
    assert listed["mail"]["health"] == "ok"
    for leaked in (refresh, secret):
        assert leaked not in airlock.daemon.log.read_text()
        assert leaked not in (airlock.paths.audit_dir / "audit.jsonl").read_text()


def test_a_redirect_with_a_forged_state_saves_nothing(
    start_airlock: Callable[..., Airlock], google: GoogleServer, tmp_path: Path
) -> None:
    client_id, secret = google.client()
    client_file = tmp_path / "client_secret.json"
    client_file.write_text(
        json.dumps({"installed": {"client_id": client_id, "client_secret": secret}})
    )
    airlock = start_airlock({"services": {"calendar": {"connector": "gcal", **google.settings()}}})
    google.state.state_override = "planted-by-a-web-page"
    refused = gcal_auth(airlock, client_file, timeout=10)  # waits for the right state
    assert refused.returncode == 3, refused.stderr
    assert "did not carry this run's state" in refused.stderr
    assert "Traceback" not in refused.stderr
    listing = json.loads(airlock.cli("credentials", "list", "--json").stdout)
    assert {"service": "calendar", "stored": False} in listing
    assert google.state.token_requests == []


def test_auth_with_the_client_id_and_secret_typed_in_at_a_terminal(
    start_airlock: Callable[..., Airlock], google: GoogleServer
) -> None:
    """No client file: the person types the client id (shown as typed) and the secret
    (hidden) at the prompts, opens the printed address, then types their TOTP code; the
    three fields reach the vault through the daemon, and the secret never shows."""
    client_id, secret = google.client()
    airlock = start_airlock({"services": {"calendar": {"connector": "gcal", **google.settings()}}})
    args = ["gcal", "auth", "calendar", "--no-browser", "--timeout", "60"]
    terminal = Terminal([sys.executable, "-m", "airlock", *args], airlock.env)
    try:
        terminal.expect(r"OAuth client id: ")
        terminal.type(client_id)
        terminal.expect(r"OAuth client secret: ")
        terminal.type(secret)
        address = terminal.expect(rf"{re.escape(google.url)}/auth\?\S+").group(0)
        terminal.expect(r"waiting for Google")
        httpx.get(address, follow_redirects=True, timeout=30).raise_for_status()  # the browser
        terminal.expect(r"TOTP code from your authenticator: ")
        code = airlock.phone.code()
        terminal.type(code)
        status = terminal.finish()
    finally:
        terminal.close()
    screen = terminal.screen
    assert status == 0, screen
    assert "saved client_id, client_secret, refresh_token for calendar" in screen
    assert f"connected: 1 calendar(s), primary {ME}" in screen
    assert f"OAuth client id: {client_id}" in screen, "typing the id is echoed as usual"
    assert secret not in screen, "the client secret was echoed"
    assert code not in screen, "the TOTP code was echoed"

    exchanged = google.state.token_requests[0]
    assert exchanged["grant_type"] == "authorization_code"
    assert (exchanged["client_id"], exchanged["client_secret"]) == (client_id, secret)
    (refresh,) = google.state.grants
    remember(refresh)
    assert secret.encode() not in airlock.stored_bytes()
    # The daemon holds all three: its connector refreshes with them and reads the calendar.
    with airlock.client() as agent:
        read = airlock.session(agent, services=["calendar"], reason="my calendars")["token"]
        listed = op(agent, read, "list_calendars")
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["result"]["calendars"]] == [ME]
    refreshed = google.state.token_requests[-1]
    assert refreshed["grant_type"] == "refresh_token"
    assert (refreshed["client_id"], refreshed["client_secret"]) == (client_id, secret)
    assert refreshed["refresh_token"] == refresh


def test_headless_credentials_add_takes_the_three_fields(
    start_airlock: Callable[..., Airlock], google: GoogleServer
) -> None:
    client_id, secret = google.client()
    refresh = remember(google.grant(client_id))
    airlock = start_airlock({"services": {"calendar": {"connector": "gcal", **google.settings()}}})
    fields = f"client_id={client_id}\nclient_secret={secret}\nrefresh_token={refresh}\n"
    added = airlock.cli("credentials", "add", "calendar", stdin=f"{airlock.phone.code()}\n{fields}")
    assert added.returncode == 0, added.stderr
    assert "connected: 1 calendar(s)" in added.stdout


def test_without_a_daemon_auth_stops_before_sending_the_person_to_google(
    start_airlock: Callable[..., Airlock], google: GoogleServer, tmp_path: Path
) -> None:
    client_id, secret = google.client()
    client_file = tmp_path / "client_secret.json"
    client_file.write_text(
        json.dumps({"installed": {"client_id": client_id, "client_secret": secret}})
    )
    airlock = start_airlock({"services": {"calendar": {"connector": "gcal", **google.settings()}}})
    airlock.stop()
    refused = gcal_auth(airlock, client_file)
    assert refused.returncode == 5, refused.stderr
    assert "/auth?" not in refused.stderr
    assert google.state.last_auth_query == {}


def test_a_strangers_invite_cannot_drive_the_persons_terminal(
    start_airlock: Callable[..., Airlock], google: GoogleServer
) -> None:
    """`airlock run` prints the result as JSON: an invite's summary holding an 8-bit CSI
    (U+009B, a control sequence for terminals that read C1 codes in UTF-8) or a bidi
    override must reach the terminal escaped, and still decode to the same text."""
    summary = "Lunch \u009b2J\u009b31mapprove all\u202egnp.exe\u2028forged line"
    google.add_event(
        ME,
        summary=summary,
        start={"dateTime": "2026-12-01T12:00:00+00:00"},
        end={"dateTime": "2026-12-01T13:00:00+00:00"},
    )
    client_id, secret = google.client()
    refresh = remember(google.grant(client_id))
    airlock = start_airlock({"services": {"calendar": {"connector": "gcal", **google.settings()}}})
    fields = f"client_id={client_id}\nclient_secret={secret}\nrefresh_token={refresh}\n"
    added = airlock.cli("credentials", "add", "calendar", stdin=f"{airlock.phone.code()}\n{fields}")
    assert added.returncode == 0, added.stderr

    run = subprocess.Popen(
        [sys.executable, "-m", "airlock", "run", "calendar", "list_events", "-p", json.dumps(WEEK)],
        env=airlock.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    for _ in range(200):
        pending = json.loads(airlock.cli("pending", "--json").stdout)
        if pending:
            break
        time.sleep(0.1)  # the request's arrival, not a timing assumption of the test
    assert pending, "the run asked for access"
    airlock.cli("approve", pending[0]["code"], stdin=airlock.phone.code() + "\n")
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    for raw in ("\u009b", "\u202e", "\u2028"):
        assert raw not in out, f"{raw!r} reached the terminal"
    events = json.loads(out)["events"]
    assert summary in [e["summary"] for e in events], "the JSON still says exactly it"


def test_what_google_says_in_a_failed_check_cannot_drive_the_persons_terminal(
    start_airlock: Callable[..., Airlock], google: GoogleServer, tmp_path: Path
) -> None:
    """`airlock gcal auth` and `airlock credentials add` print the check's words; Google's
    message in them (or a server posing as Google at api_endpoint) reaches the terminal
    with no escape sequence, C1 code or bidi override, and no stray "None" for a hint."""
    client_id, secret = google.client()
    client_file = tmp_path / "client_secret.json"
    client_file.write_text(
        json.dumps({"installed": {"client_id": client_id, "client_secret": secret}})
    )
    refresh = remember(google.grant(client_id))
    hostile = "nope \x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\u009b31m\u202egnp"
    google.fail("/calendarList", 403, hostile, times=2)
    airlock = start_airlock({"services": {"calendar": {"connector": "gcal", **google.settings()}}})
    fields = f"client_id={client_id}\nclient_secret={secret}\nrefresh_token={refresh}\n"
    added = airlock.cli("credentials", "add", "calendar", stdin=f"{airlock.phone.code()}\n{fields}")
    authorised = gcal_auth(airlock, client_file)
    for shown in (added, authorised):
        assert shown.returncode == 0, shown.stderr
        assert "check failed: Google Calendar refused calendar list: injected nope" in shown.stdout
        for control in ("\x1b", "\x07", "\u009b", "\u202e"):
            assert control not in shown.stdout + shown.stderr, f"{control!r} reached the terminal"
        assert "None" not in shown.stdout
