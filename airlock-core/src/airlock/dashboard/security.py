"""What every dashboard request passes through: Host, Origin, login, CSRF, headers.

The browser is the attack surface here: any page the person visits can make it send
requests to 127.0.0.1. Requests under a foreign name (DNS rebinding) are refused by
``Host``; state changes from another origin by ``Origin`` (plus the SameSite=Strict
cookie and a CSRF token per form); framing by ``X-Frame-Options`` and
``frame-ancestors``; injected markup by escaping everything and a CSP that runs only
this dashboard's own script file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import MultiDictProxy

from airlock.dashboard.address import host_allowed
from airlock.dashboard.auth import COOKIE, DashboardAuth
from airlock.dashboard.peer_uid import HUNG_UP, transport_uid
from airlock.errors import AirlockError, state_unavailable
from airlock.state.store import RevocationNotWritten, Session

log = structlog.get_logger("airlock.dashboard")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it Chrome sends ``Origin: null`` on form posts, and the
    # Origin check needs the real one. same-origin still tells other sites nothing.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SAFE_METHODS = ("GET", "HEAD")
PUBLIC_PATHS = ("/login", "/static/", "/favicon.ico")
SESSION_KEY = "airlock_dashboard_session"
UID_KEY = "airlock_dashboard_uid"


def refused_text(uid: int) -> str:
    """What a local user the uid gate refuses is told (by the guard and the accept gate)."""
    return f"uid {uid} may not use this Airlock (see daemon.allowed_uids)"


def plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


def make_guard(
    auth: DashboardAuth,
    *,
    port: Callable[[], int],
    remote: bool,
    allows: Callable[[int], bool],
    state: object = "state.db",
    state_failed: Callable[[str, str], Awaitable[object]] | None = None,
) -> Middleware:
    """The dashboard's checks around every request; errors as plain text with their
    status. Only the local users *allows* lets in (the socket's uid gate) are answered,
    unless *remote*: a login tries a code, which counts toward the approvals' lockout. A
    state database that refuses a write is a 503 (*state*: its path) and a record
    (*state_failed*, as the daemon's API does)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if not host_allowed(host, port=port(), remote=remote):
            log.warning("dashboard_host_refused", host=host[:80])
            return plain(421, "this dashboard answers only to its own address")
        uid = client_uid(request)
        if uid == HUNG_UP:  # read as root's otherwise (see peer_uid)
            log.warning("dashboard_client_hung_up")
            return plain(400, "the connection was closed before its request was read")
        if uid is None:
            if not remote:
                # Gone (reset) or the kernel's table unreadable (no file descriptor left):
                # taken for the daemon's owner, a refused user logged in as them.
                log.warning("dashboard_uid_unknown")
                return plain(403, "the connecting local user cannot be told; refused")
            uid = os.getuid()  # another machine: what every login was bound to before
        request[UID_KEY] = uid
        # With allow_remote the person opened it to whoever reaches it (a TLS proxy of
        # another uid, other machines): the gate would refuse the proxy, and no more.
        if not remote and not allows(uid):
            log.warning("dashboard_uid_refused", uid=uid)
            return plain(403, refused_text(uid))
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("Origin")
            # https too: the page may be served through a TLS proxy (allow_remote).
            if origin not in (f"http://{host}", f"https://{host}"):
                log.warning("dashboard_origin_refused", origin=(origin or "")[:80])
                return plain(403, "cross-origin request refused")
        session = auth.session_of(request.cookies.get(COOKIE), uid)
        if session is not None and _fetched_from_elsewhere(request):
            # Another port of 127.0.0.1 is the same site: the browser sends the cookie
            # with a page's images and fetches too (a full audit scan, an export, an
            # event stream each). A link followed to the dashboard still opens it.
            log.warning("dashboard_fetch_site_refused")
            return plain(403, "a request from another site or port is refused")
        if session is not None:
            request[SESSION_KEY] = session
        elif not request.path.startswith(PUBLIC_PATHS):
            if request.method in SAFE_METHODS and request.path != "/events":
                raise web.HTTPSeeOther("/login")
            return plain(401, "log in first")
        try:
            return await handler(request)
        except AirlockError as exc:  # e.g. the audit disk full: a 503 that says so
            return _said(exc)
        except sqlite3.OperationalError as exc:  # the state database locked or its disk full
            log.error("state_write_failed", path=request.path, error=str(exc))
            if state_failed is not None:
                with contextlib.suppress(AirlockError):  # the audit log may refuse writes too
                    await state_failed(request.method, request.path)
            return _said(
                state_unavailable(state, revocation_held=isinstance(exc, RevocationNotWritten))
            )

    return guard


def _fetched_from_elsewhere(request: web.Request) -> bool:
    """Whether a browser says another site's page made *request*, other than by the
    person following a link (a top-level navigation to a document)."""
    headers = request.headers
    if headers.get("Sec-Fetch-Site") in (None, "same-origin", "none"):
        return False
    return not (
        headers.get("Sec-Fetch-Mode") == "navigate" and headers.get("Sec-Fetch-Dest") == "document"
    )


def client_uid(request: web.Request) -> int | None:
    """The local user whose program (the browser) is on the other end of *request*; None
    when the kernel does not say (a client on another machine, one gone, or the table
    unreadable); :data:`~airlock.dashboard.peer_uid.HUNG_UP` for a local client that
    closed its end. Asked once a request, by the guard: see :func:`request_uid`."""
    return transport_uid(request.transport)


def request_uid(request: web.Request) -> int:
    """The uid the guard found for *request* (asked again later, a client that reset its
    connection meanwhile would not be there to say)."""
    uid: int = request[UID_KEY]
    return uid


def _said(exc: AirlockError) -> web.Response:
    hint = f" ({exc.hint})" if exc.hint else ""
    return plain(exc.status, exc.message + hint)


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response, pages, errors and the event stream alike (``on_response_prepare``)."""
    response.headers.update(HEADERS)


def current_session(request: web.Request) -> Session:
    session = request.get(SESSION_KEY)
    if not isinstance(session, Session):
        raise web.HTTPSeeOther("/login")
    return session


async def read_form(request: web.Request) -> MultiDictProxy[Any]:
    """The posted form; a body no form parser takes (not UTF-8, a broken multipart) is a
    400 that says so, not a 500."""
    try:
        return await request.post()
    except ValueError:  # UnicodeDecodeError is one, as is aiohttp's multipart complaint
        raise web.HTTPBadRequest(
            text="the form could not be read: send it from the dashboard's page"
        ) from None


async def check_csrf(request: web.Request, auth: DashboardAuth) -> MultiDictProxy[Any]:
    """The posted form, once its CSRF token matches the session's; 403 otherwise."""
    session = current_session(request)
    form = await read_form(request)
    given = form.get("csrf")
    if not isinstance(given, str) or not auth.csrf_ok(session.id, given):
        raise web.HTTPForbidden(text="the form is stale or forged: reload the page")
    return form
