"""Other ports of 127.0.0.1. A browser sends a host's cookies to every port of that host,
and SameSite counts them all as one site: the dashboard's login cookie reaches any server
another local user runs on 127.0.0.1 ("have a look at my dev server"). The cookie alone
must not let that user in (a login is bound to the uid of the browser that logged in),
and a user the socket refuses is refused here too."""

from __future__ import annotations

import encodings.idna  # noqa: F401 - loaded before a child drops to a user who cannot read it
import http.server
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import Airlock, as_uid, exchange, remember
from dashboard_support import CHROMIUM, Browser, field, need_browser, start_with_dashboard

from airlock.security.audit import query


def get_as(uid: int, url: str, path: str, cookie: str) -> tuple[int, bytes]:
    """GET *path* on the dashboard from a forked child that has become *uid*."""
    host = url.removeprefix("http://")
    address, port = host.rsplit(":", 1)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: airlock_dashboard={cookie}\r\n"
        "Connection: close\r\n\r\n"
    )
    answer = as_uid(uid, lambda: exchange((address, int(port)), request.encode()))
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def login_as(uid: int, url: str, code: str) -> tuple[int, str]:
    """A login with *code*, as a browser would make it (the form's token, its cookie,
    the dashboard's Origin), from a forked child that has become *uid*."""

    def login() -> bytes:
        with httpx.Client(base_url=url) as client:
            answer = page = client.get("/login")
            if page.status_code == 200:
                token = field(page.text, "login_token")
                answer = client.post(
                    "/login", data={"login_token": token, "code": code}, headers={"Origin": url}
                )
        return f"{answer.status_code} {answer.text}".encode()

    status, _, text = as_uid(uid, login).decode().partition(" ")
    return int(status), text


def raw_login(url: str, token: str) -> bytes:
    """A login with a wrong code as a browser sends it (its form token and cookie)."""
    body = f"login_token={token}&code=000000"
    return (
        f"POST /login HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\nOrigin: {url}\r\n"
        f"Cookie: airlock_login={token}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def settled(airlock: Airlock, before: int, refusals: tuple[str, ...]) -> list[Any]:
    """The codes tried since the *before*-th, once five logins were each tried or refused
    (the daemon log's ``dashboard_<refusal>`` lines), or after 10 s."""
    log = airlock.home / "daemon.log"
    deadline = time.monotonic() + 10
    while True:
        tried = query(airlock.paths.audit_dir, event="approval_failed")[before:]
        text = log.read_text(errors="replace")
        seen = sum(text.count(f"dashboard_{refusal}") for refusal in refusals)
        if len(tried) + seen >= 5 or time.monotonic() > deadline:
            return tried
        time.sleep(0.05)


@pytest.fixture
def served(start_airlock: Callable[..., Airlock]) -> tuple[Airlock, str]:
    return start_with_dashboard(start_airlock)


@pytest.fixture
def shared(start_airlock: Callable[..., Airlock], other_uid: int) -> tuple[Airlock, str]:
    """The other user may use this Airlock (an agent user, as in isolated mode)."""
    return start_with_dashboard(start_airlock, {"daemon": {"allowed_uids": [other_uid]}})


def test_a_login_cookie_replayed_by_another_uid_opens_nothing(
    shared: tuple[Airlock, str], other_uid: int
) -> None:
    airlock, url = shared
    person = Browser(url)
    assert person.login(airlock.phone.code()).status_code == 303
    cookie = remember(person.http.cookies["airlock_dashboard"])
    assert person.get("/audit").status_code == 200
    for path in ("/audit", "/pending", "/sessions", "/audit/export.jsonl"):
        status, body = get_as(other_uid, url, path, cookie)
        assert status == 303, (path, status)  # to the login page, nothing shown
        assert b"session_issued" not in body
    # The person's own browser still works, and the refusal ended nothing of theirs.
    assert person.get("/audit").status_code == 200
    person.close()


def test_a_user_the_socket_refuses_cannot_try_codes_on_the_dashboard(
    served: tuple[Airlock, str], other_uid: int
) -> None:
    """The socket lets in only the allowed uids; the dashboard answers any local user.
    Each wrong code counts toward the approvals' lockout, so without the same gate any
    user of the machine could try codes, and lock the person's approvals at will."""
    airlock, url = served
    for _ in range(5):  # approvals.max_failures
        status, text = login_as(other_uid, url, "000000")
        assert status == 403, text
        assert f"uid {other_uid} may not use this Airlock" in text
    person = Browser(url)
    assert person.get("/login").status_code == 200
    person.close()
    assert query(airlock.paths.audit_dir, event="approval_failed") == []
    with airlock.client() as agent:
        created = airlock.request(agent)
        assert airlock.approve(agent, created["code"]).status_code == 200


def test_a_refused_user_that_hangs_up_at_once_cannot_try_codes_either(
    served: tuple[Airlock, str], other_uid: int
) -> None:
    """A program that closes its end of the connection as soon as its request is sent
    no longer owns that end: once the hang-up is acknowledged, the kernel lists it with
    uid 0 and no inode. It never reads the answer, but the login it sent would be
    checked all the same, as root's."""
    airlock, url = served
    host = url.removeprefix("http://")
    address, port = host.rsplit(":", 1)
    request = raw_login(url, "t" * 32)

    def hang_up() -> bytes:
        with socket.create_connection((address, int(port))) as conn:
            conn.sendall(request)
        return b""

    # Sent while the daemon is busy (stopped here; a loaded machine, or the user's own
    # flood of requests, does the same): its end is gone by the time the daemon looks.
    assert airlock.proc is not None
    airlock.proc.send_signal(signal.SIGSTOP)
    try:
        for _ in range(5):  # approvals.max_failures
            as_uid(other_uid, hang_up)
        time.sleep(0.5)  # past the kernel's delayed acknowledgement of the hang-up (<= 200 ms)
    finally:
        airlock.proc.send_signal(signal.SIGCONT)
    assert settled(airlock, 0, ("client_hung_up",)) == []
    with airlock.client() as agent:
        created = airlock.request(agent)
        assert airlock.approve(agent, created["code"]).status_code == 200


def test_a_refused_user_cannot_hold_the_daemons_file_descriptors_through_the_dashboard(
    served: tuple[Airlock, str], other_uid: int
) -> None:
    """The uid gate ran once a request's head had arrived: another local user opening
    connections with half a head held a file descriptor of the daemon each, 1,200 of
    them all it had, and agents and the CLI were then refused. Now such a connection is
    answered 403 and closed as it is accepted, before a byte of it is read."""
    airlock, url = served
    host = url.removeprefix("http://")
    address, port = host.rsplit(":", 1)
    assert airlock.proc is not None
    fds = Path(f"/proc/{airlock.proc.pid}/fd")
    before = len(list(fds.iterdir()))

    def hold() -> bytes:
        held = []
        for _ in range(300):
            conn = socket.create_connection((address, int(port)))
            conn.sendall(b"GET /login HTTP/1.1\r\nHost: " + host.encode())  # half a head
            held.append(conn)
        time.sleep(2.0)  # while the daemon's file descriptors are counted
        answers = [conn.recv(200) for conn in held[:3]]
        for conn in held:
            conn.close()
        return b"|".join(answers)

    done: list[bytes] = []
    child = threading.Thread(target=lambda: done.append(as_uid(other_uid, hold)))
    child.start()
    time.sleep(1.5)
    grown = len(list(fds.iterdir())) - before
    child.join(30)
    assert grown < 30, f"the daemon held {grown} more file descriptors"
    [answers] = done
    assert answers.split(b"|")[0].startswith(b"HTTP/1.1 403 Forbidden")
    assert f"uid {other_uid} may not use this Airlock".encode() in answers
    with airlock.client() as agent:
        assert agent.get("/v1/status").status_code == 200


def test_a_refused_user_that_resets_its_connection_cannot_try_codes_either(
    served: tuple[Airlock, str], other_uid: int
) -> None:
    """A connection ended with a reset (SO_LINGER 0) right after its request is gone
    from the kernel's table at once: the daemon could not tell whose it was, and took it
    for its owner's. Five such logins from a refused user locked the person's approvals
    for 15 minutes, with no load on the machine. A user the kernel does not name is
    refused now (only a dashboard opened to other machines takes it for the owner)."""
    airlock, url = served
    host = url.removeprefix("http://")
    address, port = host.rsplit(":", 1)
    request = raw_login(url, "r" * 32)

    def reset() -> bytes:
        conn = socket.create_connection((address, int(port)))
        conn.sendall(request)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        return b""

    before = len(query(airlock.paths.audit_dir, event="approval_failed"))
    for _ in range(5):  # approvals.max_failures
        as_uid(other_uid, reset)
    assert settled(airlock, before, ("uid_unknown", "uid_refused")) == []
    with airlock.client() as agent:
        created = airlock.request(agent)
        assert airlock.approve(agent, created["code"]).status_code == 200


def test_with_allow_remote_the_dashboard_answers_any_user_as_its_warning_says(
    start_airlock: Callable[..., Airlock], other_uid: int
) -> None:
    """Opened to the network, the dashboard is reached through a TLS proxy running as its
    own user, or from other machines: the socket's uid gate does not apply there."""
    remote = {"dashboard": {"listen": "127.0.0.1:0", "allow_remote": True}}
    _, url = start_with_dashboard(start_airlock, remote)
    status, text = login_as(other_uid, url, "000000")
    assert status == 403, text
    assert "wrong code" in text


Site = tuple[str, list[str], dict[str, str]]


@pytest.fixture
def cookie_jar_server() -> Iterator[Site]:
    """Another user's local web server: it notes the Cookie header of every request and
    serves the pages put in its dict by path (a hello page otherwise)."""
    seen: list[str] = []
    pages: dict[str, str] = {}

    class Noting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Cookie", ""))
            hello = "<!doctype html><title>dev server</title><p>hello"
            body = pages.get(self.path, hello).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Noting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", seen, pages
    server.shutdown()
    server.server_close()


def test_the_cookie_a_browser_hands_another_port_is_refused_to_its_user(
    shared: tuple[Airlock, str], other_uid: int, cookie_jar_server: Site
) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    airlock, url = shared
    elsewhere, seen, _ = cookie_jar_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url + "/login")
        page.fill("#code", airlock.phone.code())
        page.click("button:has-text('Log in')")
        assert page.url == url + "/pending"
        page.goto(elsewhere)  # the person opens a page another local user serves
        browser.close()
    stolen = [c for c in seen if "airlock_dashboard=" in c]
    assert stolen, "the browser kept the cookie to its port (then this attack is moot)"
    cookie = stolen[0].split("airlock_dashboard=", 1)[1].split(";", 1)[0]
    remember(cookie)
    status, body = get_as(other_uid, url, "/audit", cookie)
    assert status == 303
    assert b"Audit log" not in body


def test_a_page_elsewhere_cannot_make_the_dashboard_confirm_what_was_not_done(
    served: tuple[Airlock, str], cookie_jar_server: Site
) -> None:
    """The pages confirm a decision after their own form (``?done=revoked_all``): a page
    on another port, whose navigation carries the cookie, must not show a genuine
    dashboard saying every session was revoked while they all still run."""
    need_browser()
    from playwright.sync_api import sync_playwright

    airlock, url = served
    elsewhere, _, pages = cookie_jar_server
    spoof = f"{url}/sessions?done=revoked_all"
    pages["/panic"] = f'<!doctype html><a id="go" href="{spoof}">Revoke every session</a>'
    with airlock.client() as agent, sync_playwright() as p:
        live = airlock.session(agent)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url + "/login")
        page.fill("#code", airlock.phone.code())
        page.click("button:has-text('Log in')")
        page.goto(elsewhere + "panic")
        page.click("#go")
        page.wait_for_url(spoof)
        assert live["id"] in page.inner_text("#sessions")
        assert "Every session revoked" not in page.inner_text("main")
        page.click("button:has-text('Revoke every agent session')")  # the real one
        assert "Every session revoked" in page.inner_text(".done")
        browser.close()
