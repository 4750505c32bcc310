"""The dashboard against a real daemon, over HTTP as a browser (or an attacker) speaks it."""

from __future__ import annotations

import csv
import errno
import html
import io
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from daemon_harness import Airlock, remember
from dashboard_support import Browser, field, start_with_dashboard

from airlock.errors import DaemonUnreachable
from airlock.security.audit import query

HOSTILE_REASON = "<script>alert('x')</script><img src=x onerror=alert(1)> please"


@pytest.fixture
def served(start_airlock: Callable[..., Airlock]) -> tuple[Airlock, str]:
    return start_with_dashboard(start_airlock)


@pytest.fixture
def browser(served: tuple[Airlock, str]) -> Iterator[Browser]:
    b = Browser(served[1])
    yield b
    b.close()


@pytest.fixture
def person(served: tuple[Airlock, str], browser: Browser) -> Browser:
    airlock, _ = served
    answer = browser.login(airlock.phone.code())
    assert answer.status_code == 303, answer.text
    return browser


def audit(airlock: Airlock, event: str) -> list[dict[str, Any]]:
    return query(airlock.paths.audit_dir, event=event)


@pytest.mark.parametrize("path", ["/audit", "/audit/export.jsonl", "/sessions", "/events"])
def test_a_page_on_another_port_cannot_use_the_persons_login(
    served: tuple[Airlock, str], person: Browser, path: str
) -> None:
    """A web server on another port of 127.0.0.1 is the same site to the browser, which
    sends the dashboard's cookie with its GETs: it could not read the answers, but each
    was served logged in (a full audit scan, an export of 100,000 records, one of the
    20 event streams). A logged-in request a browser says another site's page made is
    refused; the dashboard's own page, the address typed, or a link followed still get
    it."""
    for site in ("same-site", "cross-site"):
        for mode, dest in (("no-cors", "image"), ("cors", "empty"), ("navigate", "iframe")):
            made = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode, "Sec-Fetch-Dest": dest}
            assert person.get(path, headers=made).status_code == 403, made
    if path != "/events":  # a stream: not read here
        assert person.get(path).status_code == 200
        assert person.get(path, headers={"Sec-Fetch-Site": "none"}).status_code == 200
        link = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"}
        assert person.get(path, headers={**link, "Sec-Fetch-Dest": "document"}).status_code == 200


def test_login_with_a_code_sets_a_strict_httponly_cookie_listed_as_a_person_session(
    served: tuple[Airlock, str], browser: Browser
) -> None:
    airlock, _ = served
    assert browser.get("/pending").headers["location"] == "/login"
    answer = browser.login(airlock.phone.code())
    assert answer.status_code == 303
    assert answer.headers["location"] == "/pending"
    cookie = answer.headers["set-cookie"]
    assert "airlock_dashboard=ald_" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Max-Age=28800" in cookie  # dashboard.session_ttl, 8 h by default
    remember(browser.http.cookies["airlock_dashboard"])
    assert "Pending requests" in browser.get("/pending").text
    listed = json.loads(airlock.cli("sessions", "--json").stdout)
    person = [s for s in listed if s["access"] == "person"]
    assert len(person) == 1
    assert person[0]["services"] == ["dashboard"]
    verified = audit(airlock, "totp_verified")
    assert verified[-1]["channel"] == "dashboard"
    assert verified[-1]["purpose"] == "dashboard_login"


def test_wrong_and_replayed_codes_fail_count_toward_the_lockout_and_are_audited(
    served: tuple[Airlock, str], browser: Browser
) -> None:
    airlock, _ = served
    wrong = browser.login("000000")
    assert wrong.status_code == 403
    assert "wrong code" in wrong.text
    assert "4 attempts left" in wrong.text  # the approvals' lockout counter
    assert "airlock_dashboard" not in browser.http.cookies
    assert browser.login(airlock.phone.code()).status_code == 303
    replay = Browser(browser.url)
    again = replay.login(airlock.phone.used_code())
    assert again.status_code == 403
    assert "already used" in again.text
    failed = audit(airlock, "approval_failed")
    assert [f["channel"] for f in failed] == ["dashboard", "dashboard"]
    assert all(f["purpose"] == "dashboard_login" and f["remote"] == "127.0.0.1" for f in failed)
    replay.close()


def test_login_attempts_are_rate_limited_per_local_user_whatever_its_address(
    served: tuple[Airlock, str],
) -> None:
    """All of 127.0.0.0/8 is this machine: a user sending from a new loopback address
    for each try is still one user, five tries a minute."""
    _, url = served
    browsers = [Browser(url, source=f"127.0.0.{n}") for n in range(2, 9)]
    try:
        codes = [b.login("12345").status_code for b in browsers[:6]]
        assert codes[:5] == [403] * 5
        assert codes[5] == 429
        assert "too many login attempts" in browsers[6].login("123456").text
    finally:
        for b in browsers:
            b.close()


def test_the_login_form_needs_its_own_token(served: tuple[Airlock, str]) -> None:
    airlock, url = served
    forged = Browser(url)
    answer = forged.post("/login", {"login_token": "guessed", "code": airlock.phone.code()})
    assert answer.status_code == 403
    assert "airlock_dashboard" not in forged.http.cookies
    forged.close()


@pytest.mark.parametrize(
    "host",
    ["evil.example:{port}", "rebind.attacker.test:{port}", "127.0.0.1:1", "10.0.0.1:{port}", ""],
)
def test_a_foreign_host_header_is_refused_before_anything(person: Browser, host: str) -> None:
    port = person.url.rsplit(":", 1)[1]
    for path in ("/login", "/pending", "/static/dashboard.js", "/events"):
        answer = person.get(path, headers={"Host": host.format(port=port)})
        assert answer.status_code == 421, (host, path)
        assert answer.headers["X-Frame-Options"] == "DENY"


def test_localhost_and_the_address_itself_are_answered(person: Browser) -> None:
    port = person.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert person.get("/pending", headers={"Host": host}).status_code == 200


def test_state_changes_need_the_right_origin_and_csrf_token(
    served: tuple[Airlock, str], person: Browser
) -> None:
    airlock, _ = served
    with airlock.client() as client:
        session = airlock.session(client)
    csrf = person.csrf("/sessions")
    target = f"/sessions/{session['id']}/revoke"
    no_origin = person.http.post(target, data={"csrf": csrf})
    assert no_origin.status_code == 403
    evil = person.post(target, {"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    no_token = person.post(target, {})
    assert no_token.status_code == 403
    assert "stale or forged" in no_token.text
    wrong_token = person.post(target, {"csrf": "0" * 64})
    assert wrong_token.status_code == 403
    with airlock.client() as client:
        listed = client.get("/v1/sessions").json()["sessions"]
        assert session["id"] in [s["id"] for s in listed]
    assert person.post(target, {"csrf": csrf}).status_code == 303
    revoked = audit(airlock, "session_revoked")
    assert revoked[-1]["session"] == session["id"]
    assert revoked[-1]["channel"] == "dashboard"


def test_every_response_carries_the_strict_headers(person: Browser) -> None:
    for path in (
        "/login",
        "/pending",
        "/sessions",
        "/audit",
        "/activity",
        "/services",
        "/static/dashboard.css",
        "/nope",
    ):
        headers = person.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_no_page_without_a_login(served: tuple[Airlock, str]) -> None:
    _, url = served
    stranger = Browser(url)
    for path in (
        "/",
        "/pending",
        "/sessions",
        "/audit",
        "/activity",
        "/services",
        "/pending/list",
        "/audit/export.csv",
    ):
        assert stranger.get(path).status_code in (303, 401), path
    assert stranger.get("/events").status_code == 401
    stranger.http.cookies.set("airlock_dashboard", "ald_" + "A" * 43)
    assert stranger.get("/pending").status_code == 303
    stranger.close()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"\xff\xfe=\xff", "application/x-www-form-urlencoded"),
        (b"--x\r\n", "multipart/form-data; boundary=x"),
        (
            b"--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
        ),
    ],
)
def test_a_form_that_cannot_be_read_is_a_400(
    served: tuple[Airlock, str], person: Browser, body: bytes, kind: str
) -> None:
    """A body no form parser takes (not UTF-8, a broken multipart) was a 500 and a
    traceback, at the login (no login needed) and behind every other form."""
    airlock, url = served
    headers = {"Origin": url, "Content-Type": kind}
    for path in ("/login", "/logout", "/sessions/revoke-all"):
        answer = person.http.post(path, content=body, headers=headers)
        assert answer.status_code == 400, (path, answer.text)
        assert "the form could not be read" in answer.text
    assert person.get("/pending").status_code == 200  # still logged in
    log = "".join(p.read_text() for p in airlock.home.rglob("daemon.log"))
    assert "Traceback" not in log


@pytest.mark.parametrize("name", ["a" * 300 + ".js", "a%00.js", "..%2fapp.py", "nope.css"])
def test_a_bad_static_name_is_a_404_for_anyone(served: tuple[Airlock, str], name: str) -> None:
    """The static files answer without a login: no name may make them fail (a name too
    long for the file system was a 500)."""
    _, url = served
    stranger = Browser(url)
    answer = stranger.get(f"/static/{name}")
    assert answer.status_code == 404, answer.text
    assert stranger.get("/static/dashboard.js").status_code == 200
    stranger.close()


def test_agent_text_is_shown_escaped_and_approving_with_a_code_works(
    served: tuple[Airlock, str], person: Browser
) -> None:
    airlock, _ = served
    with airlock.client() as client:
        created = airlock.request(client, reason=HOSTILE_REASON, agent="<b>bot</b>")
    page = person.get("/pending").text
    assert created["code"] in page
    assert created["fingerprint"] in page
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>bot" not in page
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    )
    csrf = field(page, "csrf")
    wrong = person.post(f"/pending/{created['id']}/approve", {"csrf": csrf, "code": "999999"})
    assert wrong.status_code == 403
    assert "wrong code" in wrong.text
    done = person.post(
        f"/pending/{created['id']}/approve", {"csrf": csrf, "code": airlock.phone.code()}
    )
    assert done.status_code == 303
    assert f"Approved {created['code']}" in person.get(done.headers["location"]).text
    with airlock.client() as client:
        state = client.get(
            f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
        ).json()
    assert state["status"] == "approved"
    remember(state["session"]["token"])
    approved = [v for v in audit(airlock, "totp_verified") if v.get("request") == created["id"]]
    assert approved
    assert approved[0]["channel"] == "dashboard"
    assert approved[0]["login"] == login_of(airlock), "the record names the login that did it"


def test_every_parameter_of_a_write_is_shown_however_long_the_others(
    served: tuple[Airlock, str], person: Browser
) -> None:
    """Long values must not push a later parameter (where a message goes) off the page."""
    airlock, _ = served
    params = {"id": "1" * 200, "folder": "F" * 200, "to_folder": "Stolen\u202egro.live"}
    operation = {"service": "mail", "name": "move", "params": params}
    with airlock.client() as client:
        created = airlock.request(client, operation=operation, reason="tidy up")
    page = person.get("/pending").text
    assert created["code"] in page
    assert "1" * 200 in page
    assert "F" * 200 in page
    shown = html.unescape(page)
    assert '"to_folder": "Stolen\\u202egro.live"' in shown  # all of it, the bidi visible
    assert "\u202e" not in page


def test_a_write_parameter_with_look_alike_letters_is_named_on_the_page(
    served: tuple[Airlock, str], person: Browser
) -> None:
    """`Аrchive` with a Cyrillic А: the page names the letter, as the phone's prompt does."""
    airlock, _ = served
    params = {"id": "1", "folder": "INBOX", "to_folder": "\u0410rchive"}
    operation = {"service": "mail", "name": "move", "params": params}
    with airlock.client() as client:
        created = airlock.request(client, operation=operation, reason="tidy up")
    page = html.unescape(person.get("/pending").text)
    article = page[page.index(f'id="req-{created["code"]}"') :].split("</article>", 1)[0]
    assert "<dt>Look-alike letters</dt>" in article
    assert "'\u0410rchive': Cyrillic \u0410 U+0410" in article


def test_deny_from_the_dashboard(served: tuple[Airlock, str], person: Browser) -> None:
    airlock, _ = served
    with airlock.client() as client:
        created = airlock.request(client)
        answer = person.post(f"/pending/{created['id']}/deny", {"csrf": person.csrf()})
        assert answer.status_code == 303
        state = client.get(
            f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
        ).json()
    assert state["status"] == "denied"
    (denied,) = audit(airlock, "access_denied")
    assert (denied["login"], denied["login_uid"]) == (login_of(airlock), os.getuid())


def login_of(airlock: Airlock) -> str:
    """The id of the person's (the browser's) dashboard login, as airlock sessions lists it."""
    listed = json.loads(airlock.cli("sessions", "--json").stdout)
    return str(next(s["id"] for s in listed if s["access"] == "person"))


def test_no_secret_ever_appears_in_a_page(served: tuple[Airlock, str], person: Browser) -> None:
    airlock, _ = served
    with airlock.client() as client:
        session = airlock.session(client, reason="read my mail")
        assert airlock.op(client, session["token"], "list_messages").status_code == 200
        pending = airlock.request(client, reason="one more")
    secrets = {
        session["token"],
        pending["claim"],
        airlock.phone.secret,
        person.http.cookies["airlock_dashboard"],
    }
    remember(person.http.cookies["airlock_dashboard"])
    pages = [
        "/pending",
        "/pending/list",
        "/sessions",
        "/sessions/list",
        "/audit",
        "/activity",
        "/services",
        "/audit/export.csv",
        "/audit/export.jsonl",
    ]
    for path in pages:
        answer = person.get(path)
        assert answer.status_code == 200, path
        for secret in secrets:
            assert secret not in answer.text, path
    assert "read my mail" in person.get("/audit").text


def test_revoking_from_the_cli_ends_the_browser_session(
    served: tuple[Airlock, str], person: Browser
) -> None:
    airlock, _ = served
    listed = json.loads(airlock.cli("sessions", "--json").stdout)
    mine = next(s["id"] for s in listed if s["access"] == "person")
    assert airlock.cli("revoke", mine).returncode == 0
    assert person.get("/pending").status_code == 303


def test_revoke_all_keeps_the_person_logged_in(
    served: tuple[Airlock, str], person: Browser
) -> None:
    airlock, _ = served
    with airlock.client() as client:
        airlock.session(client)
        airlock.session(client)
        answer = person.post("/sessions/revoke-all", {"csrf": person.csrf("/sessions")})
        assert answer.status_code == 303
        left = client.get("/v1/sessions").json()["sessions"]
    assert [s["access"] for s in left] == ["person"]
    assert "No active sessions" not in person.get("/sessions").text
    revoked = audit(airlock, "session_revoked")
    assert len(revoked) == 2
    assert {r["login"] for r in revoked} == {login_of(airlock)}


def test_logout_revokes_the_cookie(served: tuple[Airlock, str], person: Browser) -> None:
    cookie = person.http.cookies["airlock_dashboard"]
    remember(cookie)
    assert person.post("/logout", {"csrf": person.csrf()}).status_code == 303
    with httpx.Client(cookies={"airlock_dashboard": cookie}) as replay:
        assert replay.get(person.url + "/pending").status_code == 303


def test_audit_filters_pages_and_exports(served: tuple[Airlock, str], person: Browser) -> None:
    airlock, _ = served
    with airlock.client() as client:
        session = airlock.session(client, reason='=HYPERLINK("http://evil")')
        for _ in range(60):
            assert airlock.op(client, session["token"], "list_messages").status_code == 200
    first = person.get("/audit", params={"event": "operation"}).text
    assert first.count("<tr class=") == 50
    older = re.search(r'href="/audit\?([^"]*before=[^"]*)"', first)
    assert older, "no link to older records"
    second = person.get("/audit?" + older.group(1).replace("&amp;", "&")).text
    assert second.count("<tr class=") == 10
    seqs = [int(s) for s in re.findall(r"<td>(\d+)</td>", first + second)]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == 60
    by_session = person.get("/audit", params={"session": session["id"], "event": "session_issued"})
    assert by_session.text.count("<tr class=") == 1
    found = person.get("/audit", params={"q": "hyperlink"}).text
    assert "access_requested" in found
    csv_text = person.get("/audit/export.csv", params={"q": "hyperlink"}).text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    # A spreadsheet shows the agent's text as text, never runs it as a formula.
    assert rows
    assert all(r["reason"] == '\'=HYPERLINK("http://evil")' for r in rows)
    lines = person.get("/audit/export.jsonl", params={"event": "operation"}).text.splitlines()
    assert len(lines) == 60
    assert all(json.loads(x)["event"] == "operation" for x in lines)
    bad = person.get("/audit", params={"from": "yesterday"})
    assert bad.status_code == 400
    assert "from: expected a day" in bad.text


def test_an_export_line_holds_one_record_whatever_the_agent_wrote(
    served: tuple[Airlock, str], person: Browser
) -> None:
    airlock, _ = served
    reason = "line\u2028separator\u2029paragraph\x85next \u202eevil"
    with airlock.client() as client:
        airlock.request(client, reason=reason)
    exported = person.get("/audit/export.jsonl", params={"event": "access_requested"}).text
    lines = exported.splitlines()  # every line break Python knows, not only \n
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["reason"] == reason, "the export is exact"
    assert exported.isascii()


def test_services_activity_and_chain_status(served: tuple[Airlock, str], person: Browser) -> None:
    airlock, _ = served
    with airlock.client() as client:
        session = airlock.session(client)
        assert airlock.op(client, session["token"], "list_messages").status_code == 200
        assert airlock.op(client, session["token"], "mark_read", id="x").status_code == 403
    assert person.post("/services/check", {"csrf": person.csrf("/services")}).status_code == 303
    services = person.get("/services").text
    assert "maildir" in services
    assert "OK" in services
    assert "Not locked" in services
    assert "console" in services
    activity = person.get("/activity").text
    assert "1 done, 1 refused" in activity
    assert 'class="refused"' in activity
    assert person.post("/audit/verify", {"csrf": person.csrf("/audit")}).status_code == 303
    for _ in range(100):
        page = person.get("/audit").text
        if "Chain intact" in page:
            break
    assert "Chain intact" in page


def test_a_network_address_without_allow_remote_stops_the_daemon_with_a_clear_error(
    start_airlock: Callable[..., Airlock],
) -> None:
    with pytest.raises(DaemonUnreachable) as refused:
        start_airlock({"dashboard": {"listen": "0.0.0.0:0"}})
    assert "dashboard.listen: 0.0.0.0 is not a loopback address" in str(refused.value)


def test_off_serves_no_dashboard_and_a_taken_port_leaves_the_daemon_running(
    start_airlock: Callable[..., Airlock],
) -> None:
    off = start_airlock({"dashboard": {"listen": "off"}}, name="off")
    with off.client() as client:
        assert client.get("/v1/status").status_code == 200
    assert not (off.paths.run_dir / "dashboard.url").exists()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = start_airlock({"dashboard": {"listen": f"127.0.0.1:{port}"}}, name="busy")
        log = busy.home / "daemon.log"
        deadline = time.monotonic() + 20
        while "dashboard not started" not in log.read_text():  # printed just after ready
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        with busy.client() as client:
            assert client.get("/v1/status").status_code == 200
        assert not (busy.paths.run_dir / "dashboard.url").exists()
        # Whatever holds the port may be a look-alike page asking for a code: every
        # channel is told (the console's notice is in the daemon's log).
        warning = f"127.0.0.1:{port} is taken by another program"
        while warning not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        assert "type no code there" in log.read_text()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_no_other_program_can_serve_localhost_on_the_dashboards_port(
    served: tuple[Airlock, str],
) -> None:
    """``localhost`` is ::1 first for a browser: a look-alike login page another user
    put on [::1] of the dashboard's port would get the code typed at localhost:PORT."""
    if not _ipv6_loopback():
        pytest.skip("no ::1 here: nobody can take it")
    _, url = served
    port = int(url.rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET6) as lookalike:
        with pytest.raises(OSError, match="in use") as taken:
            lookalike.bind(("::1", port))
        assert taken.value.errno == errno.EADDRINUSE
    answer = httpx.get(f"http://[::1]:{port}/login")
    assert "Type the current code" in answer.text  # the dashboard itself answers there


def test_localhost_taken_before_the_start_is_told_on_every_channel(
    start_airlock: Callable[..., Airlock],
) -> None:
    if not _ipv6_loopback():
        pytest.skip("no ::1 here: nobody can take it")
    with socket.socket(socket.AF_INET6) as lookalike:
        lookalike.bind(("::1", 0))
        lookalike.listen()
        port = lookalike.getsockname()[1]
        airlock, url = start_with_dashboard(
            start_airlock, {"dashboard": {"listen": f"127.0.0.1:{port}"}}
        )
        assert httpx.get(url + "/login").status_code == 200  # 127.0.0.1 still serves
        log = airlock.home / "daemon.log"
        warning = f"localhost:{port} (::1) is taken by another program"
        deadline = time.monotonic() + 20
        while warning not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        assert f"so use 127.0.0.1:{port} for the dashboard" in log.read_text()


def test_airlock_dashboard_prints_the_address(
    served: tuple[Airlock, str], start_airlock: Callable[..., Airlock]
) -> None:
    airlock, url = served
    shown = airlock.cli("dashboard", "--no-browser")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == url + "/"
    off = start_airlock({"dashboard": {"listen": "off"}}, name="off")
    refused = off.cli("dashboard", "--no-browser")
    assert refused.returncode == 1
    assert "the dashboard is off" in refused.stderr
    off.stop()
    gone = airlock.stop()
    assert gone == 0
    stopped = airlock.cli("dashboard", "--no-browser")
    assert stopped.returncode == 5
    assert "airlock serve" in stopped.stderr


@pytest.mark.parametrize(
    ("params", "field_name"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"before": "12@not-a-time"}, "before"),
        ({"before": "x@2026-01-01T00:00:00.000Z"}, "before"),
        ({"before": "9" * 40 + "@2026-01-01T00:00:00.000Z"}, "before"),
        ({"before": "12@2026-01-01T00:00:00", "to": "2026-01-02"}, "before"),  # no zone
        ({"q": "x" * 101}, "q"),
        ({"session": "s" * 500}, "session"),
    ],
)
def test_bad_audit_filters_are_a_400_naming_the_field(
    person: Browser, params: dict[str, str], field_name: str
) -> None:
    exported = () if field_name == "before" else ("/audit/export.csv",)  # exports are whole
    for path in ("/audit", *exported):
        answer = person.get(path, params=params)
        assert answer.status_code == 400, (path, params, answer.text[:200])
        assert f"{field_name}:" in answer.text


def test_day_range_and_a_broken_chain_show(served: tuple[Airlock, str], person: Browser) -> None:
    airlock, _ = served
    today = datetime.now(UTC).date()
    shown = person.get("/audit", params={"from": str(today), "to": str(today)}).text
    assert "session_issued" in shown
    later = today + timedelta(days=1)
    assert "No records match" in person.get("/audit", params={"from": str(later)}).text
    assert "No records match" in person.get("/audit", params={"to": str(today - timedelta(1))}).text
    log = airlock.paths.audit_dir / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b'"daemon_started"', b'"daemon_startex"')
    log.write_bytes(b"".join(lines))
    assert person.post("/audit/verify", {"csrf": person.csrf("/audit")}).status_code == 303
    for _ in range(200):
        page = person.get("/audit").text
        if "Chain BROKEN" in page:
            break
    assert "Chain BROKEN" in page
    assert "audit.jsonl:1" in page
