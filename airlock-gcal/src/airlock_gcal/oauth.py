"""Google's OAuth flow for installed apps, by hand: loopback redirect, PKCE, checked state.

1. A small web server listens on 127.0.0.1 on a random port (a thread per connection,
   each silent one dropped after 10 s: any local user can connect to it).
2. The person opens the authorization address (printed, and opened in a browser when
   there is one); Google sends the browser back to ``http://127.0.0.1:PORT/`` with a
   ``code`` and the ``state`` we made.
3. A ``state`` other than ours is refused (another page, or another local user, trying
   to plant its own grant) and the wait goes on for ours;
   the code is exchanged with our PKCE verifier (S256), so a code seen by anyone else is
   useless to them.

Only the refresh token is kept (by the caller, in the daemon's vault); the access token
that comes with it is dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from airlock.plugin import AccessDenied, AirlockError, ApprovalTimedOut, InvalidInput

__all__ = ["Answer", "OAuthClient", "authorize", "load_client_secrets", "pkce_pair"]

Say = Callable[[str], None]
OpenBrowser = Callable[[str], object]
_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>Airlock</title>"
    b"<p>Airlock received Google's answer. You can close this window.</p>"
)


@dataclass(frozen=True)
class OAuthClient:
    """The person's own OAuth client (type "Desktop app")."""

    client_id: str
    client_secret: str = field(repr=False)


def load_client_secrets(path: Path) -> OAuthClient:
    """The ``client_secret_….json`` Google's console lets you download."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"cannot read {path}: {type(exc).__name__}", field="client_secrets"
        ) from None
    entry = (data.get("installed") or data.get("web")) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or not entry.get("client_id") or not entry.get("client_secret"):
        raise InvalidInput(
            f"{path} is not an OAuth client file (no installed.client_id/client_secret)",
            field="client_secrets",
            hint="download it from Google Cloud console > APIs & Services > Credentials",
        )
    return OAuthClient(str(entry["client_id"]), str(entry["client_secret"]))


def pkce_pair() -> tuple[str, str]:
    """A fresh code verifier (86 characters) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Answer:
    """What came back to the loopback address: the first request carrying *state*."""

    state: str
    params: dict[str, str] = field(default_factory=dict)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refused: int = 0
    """Answers that did not carry *state* (not from the address printed)."""

    def take(self, query: dict[str, list[str]]) -> int:
        """The HTTP status for *query*: 200 for our answer, 400 for one without our
        state (any local user can reach the port: it must not end the wait), 404 else."""
        with self.lock:
            if self.arrived.is_set() or not ({"code", "error", "state"} & set(query)):
                return 404  # a favicon, or a second visit
            given = (query.get("state") or [""])[0]
            if not hmac.compare_digest(given.encode(), self.state.encode()):
                self.refused += 1
                return 400
            self.params = {k: v[0] for k, v in query.items() if v}
            self.arrived.set()
            return 200


def _receiver(answer: Answer) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        timeout = 10  # seconds a connection may stay silent (any local user can connect)

        def do_GET(self) -> None:
            status = answer.take(parse_qs(urlsplit(self.path).query))
            if status != 200:
                self.send_error(status)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(_PAGE)))
            self.end_headers()
            self.wfile.write(_PAGE)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the query holds the code."""

    return Receiver


def authorize(
    *,
    client: OAuthClient,
    scopes: list[str],
    auth_uri: str,
    token_uri: str,
    say: Say,
    open_browser: OpenBrowser | None,
    timeout: float = 300.0,
) -> str:
    """Run the flow and return the refresh token Google granted for *scopes*."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(32)
    answer = Answer(state)
    # A thread per connection: one that never sends its request holds up only itself.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _receiver(answer))
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        query = urlencode(
            {
                "client_id": client.client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": " ".join(scopes),
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "access_type": "offline",  # a refresh token, please
                "prompt": "consent",  # ... even if this client was authorised before
            }
        )
        url = f"{auth_uri}{'&' if '?' in auth_uri else '?'}{query}"
        say(f"Open this address to let Airlock read your calendar:\n\n  {url}\n")
        if open_browser is not None:
            open_browser(url)
        say(f"waiting for Google to send your browser back to {redirect_uri} ...")
        if not answer.arrived.wait(timeout) and answer.refused:
            raise AccessDenied(
                f"no answer carrying this run's state within {timeout:.0f}s ({answer.refused} "
                "that did not carry this run's state were refused: they did not come from "
                "the address printed above); nothing was saved",
                hint="run `airlock gcal auth` again and use only the address it prints",
            )
        if not answer.arrived.is_set():
            raise ApprovalTimedOut(
                f"no answer from the browser within {timeout:.0f}s; nothing was saved"
            )
    finally:
        server.shutdown()
        server.server_close()
    got = answer.params
    if not hmac.compare_digest(got.get("state", "").encode(), state.encode()):
        raise AccessDenied(
            "the answer that reached Airlock does not carry this run's state: it did not "
            "come from the address printed above; nothing was saved",
            hint="run `airlock gcal auth` again and use only the address it prints",
        )
    if "error" in got:
        raise AccessDenied(f"Google did not grant access: {got['error'][:60]}")
    if not got.get("code"):
        raise AirlockError("Google's answer has no authorization code; nothing was saved")
    return exchange(client, token_uri, got["code"], verifier, redirect_uri, scopes)


def exchange(
    client: OAuthClient,
    token_uri: str,
    code: str,
    verifier: str,
    redirect_uri: str,
    scopes: list[str],
) -> str:
    """The authorization code for tokens; returns the refresh token."""
    import httpx

    try:
        response = httpx.post(
            token_uri,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
            },
            headers={"Accept": "application/json"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise AirlockError(f"cannot reach Google's token endpoint: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200:
        error = str(body.get("error", response.status_code))[:60]
        raise AccessDenied(
            f"Google refused the authorization code ({error}); nothing was saved",
            hint="check the client id and secret, then run `airlock gcal auth` again",
        )
    refresh = body.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise AirlockError(
            "Google sent no refresh token; nothing was saved",
            hint="remove Airlock at https://myaccount.google.com/permissions and run again",
        )
    granted = set(str(body.get("scope", " ".join(scopes))).split())
    missing = [s for s in scopes if s not in granted]
    if missing:
        raise AccessDenied(
            f"Google granted less than asked (missing {', '.join(missing)}); nothing was saved",
            hint="run `airlock gcal auth` again and tick every calendar permission",
        )
    return refresh
