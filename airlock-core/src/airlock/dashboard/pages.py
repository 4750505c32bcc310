"""Login, pending requests (live), sessions: the pages that change state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from airlock.daemon.runtime import Runtime
from airlock.dashboard.app import Dashboard, of
from airlock.dashboard.auth import COOKIE, LOGIN_COOKIE, PERSON_ACCESS
from airlock.dashboard.security import check_csrf, current_session, read_form, request_uid
from airlock.errors import AirlockError
from airlock.framework.spending import format_usd
from airlock.models import Access, RequestStatus
from airlock.security.peers import Peer
from airlock.security.prompts import spoofed_words
from airlock.security.request_codes import CODE_PATTERN
from airlock.settings.durations import format_duration
from airlock.state.store import Session

LOGIN_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
EVENT_INTERVAL = 1.0
KEEPALIVE_EVERY = 15
# Each open page holds one stream; a bound keeps a runaway tab from holding the loop.
MAX_STREAMS = 20
VALUE_SHOWN = 2000
DONE = {
    "approved": "Approved",
    "denied": "Denied",
    "revoked": "Session revoked",
    "revoked_all": "Every session revoked",
}


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


def _remote(request: web.Request) -> str:
    return request.remote or "unknown"


def _cookie_flags(request: web.Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "Strict", "path": "/", "secure": request.secure}


# -- login -------------------------------------------------------------------------------


async def login_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    """The login form; a double-submit token in a cookie and in the form. A token the
    browser already holds is kept, so two tabs (or a favicon fetch) do not race."""
    dash = of(request)
    held = request.cookies.get(LOGIN_COOKIE, "")
    token = held if LOGIN_TOKEN.match(held) else secrets.token_urlsafe(24)
    response = dash.render(request, "login.html", status=status, login_token=token, error=error)
    response.set_cookie(LOGIN_COOKIE, token, max_age=600, **_cookie_flags(request))
    return response


async def login(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    form = await read_form(request)
    given, expected = form.get("login_token"), request.cookies.get(LOGIN_COOKIE)
    if not isinstance(given, str) or not expected or not secrets.compare_digest(given, expected):
        return await login_page(request, "The form expired; type the code again.", 403)
    code = form.get("code")
    try:
        done = await dash.auth.login(
            code if isinstance(code, str) else "", _remote(request), request_uid(request)
        )
    except AirlockError as exc:
        return await login_page(request, exc.message, exc.status)
    response = web.HTTPSeeOther("/pending")
    response.set_cookie(
        COOKIE, done.token, max_age=dash.rt.config.dashboard.session_ttl, **_cookie_flags(request)
    )
    response.del_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    await check_csrf(request, dash.auth)
    await dash.auth.logout(current_session(request))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    return response


# -- pending -----------------------------------------------------------------------------


def pending_rows(request: web.Request) -> list[dict[str, Any]]:
    rt = of(request).rt
    now = rt.clock.now()
    rows = []
    for r in rt.store.list_requests(RequestStatus.PENDING):
        if r.expires_at <= now:
            continue
        rows.append(
            {
                "id": r.id,
                "code": r.code,
                "fingerprint": r.fingerprint,
                "uid": r.requester_uid,
                "pid": r.requester_pid,
                "process": Peer(r.requester_uid, r.requester_pid).process,
                "agent": r.agent,
                "services": ", ".join(r.services),
                "access": r.access,
                "operation": r.operation,
                "params": _params(r.operation.get("params", {})) if r.operation else "",
                "target": (target := rt.approvals.target(r)),
                "lookalikes": _lookalikes(r.id, r.operation, target),
                "ttl": format_duration(r.ttl),
                "budget": format_usd(r.budget_nano) if r.budget_nano is not None else "",
                "reason": r.reason,
                "sensitive": r.sensitive,
                "expires": _when(r.expires_at),
            }
        )
    return rows


_LOOKALIKES: OrderedDict[tuple[str, str | None], str | None] = OrderedDict()


def _lookalikes(
    request_id: str, operation: dict[str, Any] | None, target: str | None
) -> str | None:
    """What the phone's prompt says of a write's look-alike letters, the same here:
    worked out once a request (its parameters do not change; a megabyte of them takes
    up to ~0.3 s, and the page is loaded again and again), the last 256 kept."""
    if not operation:
        return None
    key = (request_id, target)
    if key not in _LOOKALIKES:
        _LOOKALIKES[key] = spoofed_words(operation.get("params", {}), target)
        while len(_LOOKALIKES) > 256:
            _LOOKALIKES.popitem(last=False)
    return _LOOKALIKES[key]


def _params(params: dict[str, Any]) -> str:
    """Every parameter of a write on its own line, each value cut at VALUE_SHOWN
    characters: a long value must not hide the next parameter (where a message goes).
    ASCII JSON, so no control, bidi or zero-width character reaches the page: they show
    as ``\\u202e``."""
    lines = []
    for key in sorted(params):
        value = json.dumps(params[key], sort_keys=True, ensure_ascii=True)
        if len(value) > VALUE_SHOWN:
            more = len(value) - VALUE_SHOWN
            value = f"{value[:VALUE_SHOWN]}… ({more} more characters: airlock pending --json)"
        lines.append(f"{json.dumps(str(key), ensure_ascii=True)}: {value}")
    return "\n".join(lines)


def _done_message(request: web.Request) -> str:
    """The confirmation after this dashboard's own form redirected here. A page anywhere
    can link to ``?done=revoked_all`` (from another port of 127.0.0.1 with the cookie),
    so it shows only when the browser says the navigation came from this origin."""
    if request.headers.get("Sec-Fetch-Site") != "same-origin":
        return ""
    what = DONE.get(request.query.get("done", ""), "")
    code = request.query.get("code", "")
    return f"{what} {code}".strip() if what and (not code or CODE_PATTERN.match(code)) else what


async def pending(request: web.Request) -> web.StreamResponse:
    current_session(request)
    return of(request).render(
        request, "pending.html", rows=pending_rows(request), done=_done_message(request), error=""
    )


async def pending_list(request: web.Request) -> web.StreamResponse:
    current_session(request)
    return of(request).render(request, "_pending_list.html", rows=pending_rows(request))


async def decide(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    form = await check_csrf(request, dash.auth)
    ref = request.match_info["id"][:64]
    action = request.match_info["action"]
    by = _by(request)
    try:
        if action == "approve":
            code = form.get("code")
            done = await dash.rt.approvals.approve(
                ref, code if isinstance(code, str) else "", peer=None, channel="dashboard", by=by
            )
        else:
            done = await dash.rt.approvals.deny(ref, peer=None, channel="dashboard", by=by)
    except AirlockError as exc:
        return dash.render(
            request,
            "pending.html",
            status=exc.status,
            rows=pending_rows(request),
            done="",
            error=exc.message,
        )
    raise web.HTTPSeeOther(f"/pending?done={done.status}&code={done.code}")


# -- sessions ----------------------------------------------------------------------------


def session_rows(request: web.Request) -> list[dict[str, Any]]:
    rt = of(request).rt
    rt.gateway.uses.flush()
    mine = current_session(request).id
    return [
        {
            "id": s.id,
            "uid": s.uid,
            "services": ", ".join(s.services),
            "access": s.access,
            "person": s.access == PERSON_ACCESS,
            "this": s.id == mine,
            "created": _when(s.created_at),
            "expires": _when(s.expires_at),
            "left": _left(s.expires_at - rt.clock.now()),
            "uses": s.use_count,
            "budget": _budget_left(rt, s),
        }
        for s in rt.store.list_sessions(active_at=rt.clock.now())
    ]


def _left(seconds: float) -> str:
    """Time left as a person reads it: ``7h 59m``, ``12m``, ``40s``."""
    whole = max(1, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m" if minutes else f"{whole}s"


def _budget_left(rt: Runtime, session: Session) -> str:
    if session.access is not Access.SPEND:
        return ""
    state = rt.priced.budgets.state(session.id)
    if state is None:
        return ""
    return f"{format_usd(state.left_nano)} left of {format_usd(state.limit_nano)}"


async def sessions(request: web.Request) -> web.StreamResponse:
    return of(request).render(
        request, "sessions.html", rows=session_rows(request), done=_done_message(request)
    )


async def sessions_list(request: web.Request) -> web.StreamResponse:
    return of(request).render(request, "_sessions_list.html", rows=session_rows(request))


async def _revoke(request: web.Request, session: Session) -> None:
    rt = of(request).rt
    if session.revoked_at is None:
        # The record first: a revocation nobody can see in the audit does not happen.
        await rt.audit.append(
            "session_revoked",
            session=session.id,
            owner_uid=session.uid,
            channel="dashboard",
            **_by(request),
        )
        rt.store.revoke_session(session.id, at=rt.clock.now())


async def revoke(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    await check_csrf(request, dash.auth)
    found = dash.rt.store.get_session(request.match_info["id"][:64])
    if found is None:
        raise web.HTTPNotFound(text="no such session")
    await _revoke(request, found)
    raise web.HTTPSeeOther("/sessions?done=revoked")


async def revoke_all(request: web.Request) -> web.StreamResponse:
    """Every agent session; the person's own dashboard sessions stay (log out for those)."""
    dash = of(request)
    await check_csrf(request, dash.auth)
    await dash.rt.approvals.revoke_all(
        uid=None, channel="dashboard", actor=_by(request), spare_person=True
    )
    raise web.HTTPSeeOther("/sessions?done=revoked_all")


def _by(request: web.Request) -> dict[str, Any]:
    """Who did it, for its record: the dashboard login and the uid of its browser."""
    login = current_session(request)
    return {"login": login.id, "login_uid": login.uid}


# -- live updates ------------------------------------------------------------------------


def _snapshot(request: web.Request) -> tuple[tuple[str, ...], tuple[str, ...]]:
    rt = of(request).rt
    now = rt.clock.now()
    waiting = tuple(
        r.id for r in rt.store.list_requests(RequestStatus.PENDING) if r.expires_at > now
    )
    active = tuple(f"{s.id}:{s.use_count}" for s in rt.store.list_sessions(active_at=now))
    return waiting, active


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``pending`` or ``sessions`` when that list changed."""
    dash = of(request)
    session = current_session(request)
    if dash.streams >= MAX_STREAMS:
        raise web.HTTPTooManyRequests(text="too many open dashboard pages")
    dash.streams += 1
    try:
        return await _stream(request, dash, session)
    finally:
        dash.streams -= 1


async def _stream(request: web.Request, dash: Dashboard, session: Session) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b": open\n\n")  # the browser fires onopen once headers arrive
    last = _snapshot(request)
    ticks = 0
    while not dash.closing.is_set() and dash.auth.session_of_id(session.id):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dash.closing.wait(), EVENT_INTERVAL)
        now = _snapshot(request)
        ticks += 1
        chunks = []
        if now[0] != last[0]:
            chunks.append(b"event: pending\ndata: changed\n\n")
        if now[1] != last[1]:
            chunks.append(b"event: sessions\ndata: changed\n\n")
        if not chunks and ticks % KEEPALIVE_EVERY == 0:
            chunks.append(b": keepalive\n\n")
        last = now
        try:
            for chunk in chunks:
                await response.write(chunk)
        except (ConnectionResetError, RuntimeError):
            break
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/login", login_page)
    router.add_post("/login", login)
    router.add_post("/logout", logout)
    router.add_get("/pending", pending)
    router.add_get("/pending/list", pending_list)
    router.add_post(r"/pending/{id}/{action:approve|deny}", decide)
    router.add_get("/sessions", sessions)
    router.add_get("/sessions/list", sessions_list)
    router.add_post("/sessions/revoke-all", revoke_all)
    router.add_post("/sessions/{id}/revoke", revoke)
    router.add_get("/events", events)
