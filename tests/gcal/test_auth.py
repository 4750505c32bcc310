"""`airlock gcal auth`'s OAuth flow against a local Google: loopback redirect, PKCE, state."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from airlock.errors import AccessDenied, ApprovalTimedOut, InvalidInput
from airlock.testing import dumpable_after, skip_or_fail_under_ci
from airlock_gcal.browser import opened_privately
from airlock_gcal.oauth import OAuthClient, authorize, exchange, load_client_secrets, pkce_pair
from tests.e2e.daemon_harness import as_uid
from tests.gcal.google_server import READ, WRITE, GoogleServer


def browser(url: str) -> None:
    """The person's browser: consent is given at once, the redirect is followed."""
    httpx.get(url, follow_redirects=True, timeout=10).raise_for_status()


def run_flow(google: GoogleServer, client: OAuthClient, scopes: list[str], **kw: object) -> str:
    said: list[str] = []
    token = authorize(
        client=client,
        scopes=scopes,
        auth_uri=f"{google.url}/auth",
        token_uri=f"{google.url}/token",
        say=said.append,
        open_browser=kw.get("open_browser", browser),  # type: ignore[arg-type]
        timeout=float(kw.get("timeout", 20)),  # type: ignore[arg-type]
    )
    assert any(f"{google.url}/auth?" in line for line in said), "the address is printed"
    return token


def test_the_flow_returns_a_refresh_token_for_the_read_scope_only(google: GoogleServer) -> None:
    client = OAuthClient(*google.client())
    refresh = run_flow(google, client, [READ])
    assert google.state.grants[refresh].scopes == [READ]
    asked = google.state.last_auth_query
    assert asked["scope"] == READ
    assert asked["code_challenge_method"] == "S256"
    assert asked["access_type"] == "offline"
    redirect = urlsplit(asked["redirect_uri"])
    assert (redirect.scheme, redirect.hostname, redirect.path) == ("http", "127.0.0.1", "/")
    assert redirect.port not in (None, 80, 8080), "a random port"
    exchanged = google.state.token_requests[-1]
    assert exchanged["grant_type"] == "authorization_code"
    assert len(exchanged["code_verifier"]) >= 43, "the server checked it against the challenge"


def test_write_asks_for_calendar_events_too(google: GoogleServer) -> None:
    refresh = run_flow(google, OAuthClient(*google.client()), [READ, WRITE])
    assert google.state.grants[refresh].scopes == [READ, WRITE]


def test_an_answer_with_another_state_is_refused_and_nothing_is_exchanged(
    google: GoogleServer,
) -> None:
    google.state.state_override = "forged-by-another-page"
    refused: list[int] = []

    def browser_seeing_the_refusal(url: str) -> None:
        refused.append(httpx.get(url, follow_redirects=True, timeout=10).status_code)

    with pytest.raises(AccessDenied, match="1 that did not carry this run's state"):
        run_flow(
            google,
            OAuthClient(*google.client()),
            [READ],
            open_browser=browser_seeing_the_refusal,
            timeout=0.5,  # the wait for an answer with the right state, which never comes
        )
    assert refused == [400]
    assert google.state.token_requests == []


def test_the_server_refuses_a_code_without_its_verifier(google: GoogleServer) -> None:
    """What PKCE buys: a code seen by someone else cannot be exchanged without our verifier."""
    client = OAuthClient(*google.client())
    verifier, challenge = pkce_pair()
    redirect = "http://127.0.0.1:9/"
    answer = httpx.get(
        f"{google.url}/auth",
        params={
            "client_id": client.client_id,
            "redirect_uri": redirect,
            "response_type": "code",
            "scope": READ,
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    other_verifier, _ = pkce_pair()
    with pytest.raises(AccessDenied, match="invalid_grant"):
        exchange(client, f"{google.url}/token", code, other_verifier, redirect, [READ])
    assert verifier != other_verifier


def test_a_silent_connection_to_the_loopback_port_does_not_hold_up_the_answer(
    google: GoogleServer,
) -> None:
    """Any local user sees the listening port (`ss -ltn`): one that connects and sends
    nothing must not keep the person's browser from being answered."""
    silent: list[socket.socket] = []

    def browser_after_a_squatter(url: str) -> None:
        redirect = urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0])
        silent.append(socket.create_connection((redirect.hostname, redirect.port)))
        browser(url)

    client = OAuthClient(*google.client())
    with ThreadPoolExecutor(1) as pool:
        flow = pool.submit(run_flow, google, client, [READ], open_browser=browser_after_a_squatter)
        try:
            # A bound, so a flow stuck behind the silent connection fails instead of hanging.
            refresh = flow.result(timeout=60)
        finally:
            for connection in silent:
                connection.close()
    assert google.state.grants[refresh].scopes == [READ]


def test_a_planted_answer_before_the_browsers_does_not_end_the_flow(
    google: GoogleServer,
) -> None:
    """A local user who sees the port sends `/?state=...&code=...` before Google's
    redirect arrives: refused, and the person's own answer is still taken."""

    def browser_after_a_planted_answer(url: str) -> None:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        planted = httpx.get(redirect, params={"state": "guess", "code": "theirs"}, timeout=10)
        assert planted.status_code == 400
        browser(url)

    client = OAuthClient(*google.client())
    refresh = run_flow(google, client, [READ], open_browser=browser_after_a_planted_answer)
    assert google.state.grants[refresh].scopes == [READ]
    assert [r["code"] for r in google.state.token_requests] != ["theirs"]


def test_no_answer_in_time_saves_nothing(google: GoogleServer) -> None:
    with pytest.raises(ApprovalTimedOut, match="nothing was saved"):
        run_flow(google, OAuthClient(*google.client()), [READ], open_browser=None, timeout=0.3)


def test_client_secret_files_as_google_gives_them(tmp_path: Path) -> None:
    path = tmp_path / "client_secret_123.json"
    path.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": "123-abc.apps.googleusercontent.com",
                    "client_secret": "GOCSPX-xyz",
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                    "token_uri": "https://oauth2.googleapis.com/token",
                    "redirect_uris": ["http://localhost"],
                }
            }
        )
    )
    client = load_client_secrets(path)
    assert client.client_id == "123-abc.apps.googleusercontent.com"
    assert "GOCSPX" not in repr(client)
    path.write_text('{"type": "service_account"}')
    with pytest.raises(InvalidInput, match="not an OAuth client file"):
        load_client_secrets(path)


def test_the_client_secret_and_grant_are_held_by_a_process_its_own_user_cannot_read(
    tmp_path: Path,
) -> None:
    """``airlock gcal auth`` holds the client secret, then the refresh token, for as long
    as the person takes in the browser: an agent running as the person must not read them
    out of its memory (ptrace, /proc/PID/mem)."""
    path = tmp_path / "client_secret_123.json"
    path.write_text(json.dumps({"installed": {"client_id": "123", "client_secret": "GOCSPX-x"}}))
    probe = "import sys\nfrom pathlib import Path\nfrom airlock_gcal.cli import _client\n"
    assert not dumpable_after(probe + "_client(Path(sys.argv[1]))", str(path))


def test_the_browser_is_given_a_private_page_not_the_address(tmp_path: Path) -> None:
    """A browser's command line is readable by every local user (/proc/PID/cmdline):
    the address, with the flow's state and PKCE challenge, goes in a page only the
    person can read, which forwards to it, and is gone once the command ends."""
    address = "https://accounts.example/auth?state=S3CRET&code_challenge=CH&x=<'\">"
    given: list[str] = []
    with opened_privately(given.append) as open_page:
        assert open_page is not None
        open_page(address)
        (uri,) = given
        page = Path(unquote(urlsplit(uri).path))
        assert uri.startswith("file://")
        assert "S3CRET" not in uri
        assert stat.S_IMODE(page.stat().st_mode) == 0o600
        assert stat.S_IMODE(page.parent.stat().st_mode) == 0o700
        forward = re.search(r'content="0; url=([^"]+)"', page.read_text())
        assert forward is not None
        assert html.unescape(forward.group(1)) == address
    assert not page.parent.exists()
    with opened_privately(None) as nothing:
        assert nothing is None


ATTACKER = 54_323
"""A uid with no account: root may switch a forked process to any uid."""


def _swap(folder: Path) -> str:
    """Move the person's folder aside and put a page of one's own in its place."""
    try:
        os.rename(folder, folder.with_name(folder.name + "-moved"))
    except PermissionError:
        return "refused"
    folder.mkdir()
    (folder / "sign-in.html").write_text(
        '<meta http-equiv="refresh" content="0; url=https://accounts.example/auth?state=MINE">'
    )
    return "swapped"


def test_a_cache_folder_another_user_planted_does_not_get_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home folder others may write in (HOME=/tmp, a shared folder): another user made
    ``.cache`` there first, theirs and open to all. The page's folder inside it is the
    person's, but the folder around it is theirs: they can move it aside and put their
    own page (a sign-in of theirs) where the browser is about to read it."""
    if os.geteuid() != 0:
        skip_or_fail_under_ci("needs root to act as another user")
    home = Path(tempfile.mkdtemp(prefix="gcal-home-"))
    try:
        os.chmod(home, 0o1777)  # noqa: S103 - a home others may write in, as /tmp is
        planted = home / ".cache"
        planted.mkdir()
        os.chown(planted, ATTACKER, ATTACKER)
        os.chmod(planted, 0o777)  # noqa: S103 - the other user's folder, open to all
        monkeypatch.setenv("HOME", str(home))
        address = "https://accounts.example/auth?state=S3CRET"
        read: list[str] = []

        def browser(uri: str) -> None:
            page = Path(unquote(urlsplit(uri).path))
            as_uid(ATTACKER, lambda: _swap(page.parent).encode())  # before the browser reads it
            read.append(page.read_text())

        with opened_privately(browser) as open_page:
            assert open_page is not None
            open_page(address)
        forward = re.search(r'content="0; url=([^"]+)"', read[0])
        assert forward is not None
        assert html.unescape(forward.group(1)) == address
    finally:
        shutil.rmtree(home)
