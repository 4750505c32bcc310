"""A local Google: Calendar API v3 and the OAuth 2.0 endpoints, speaking their wire format.

- ``GET /calendar/v3/users/me/calendarList``, ``GET|POST /calendar/v3/calendars/{id}/events``
  (``timeMin``/``timeMax`` RFC 3339 with an offset, ``q``, ``singleEvents`` expanding
  ``RRULE:FREQ=DAILY|WEEKLY;COUNT=n``, ``orderBy=startTime`` only with singleEvents,
  ``maxResults`` (default 250), ``pageToken`` → ``nextPageToken``), ``GET|PATCH
  .../events/{eventId}``, ``POST /calendar/v3/freeBusy``. Errors are
  ``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}``.
- ``POST /token``: ``refresh_token`` and ``authorization_code`` grants; the PKCE verifier
  is checked against the challenge (S256); a revoked grant is ``invalid_grant``.
- ``GET /auth``: the consent screen, answered at once with a redirect to the loopback
  ``redirect_uri`` carrying ``code`` and ``state``.

Access tokens carry the scopes of their grant: an insert or patch with a read-only token
is a 403 ``insufficientPermissions``, as Google answers. Failures are injected with
:meth:`GoogleServer.fail`; every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from tests.notifier_harness.threaded_server import ThreadedServer

READ = "https://www.googleapis.com/auth/calendar.readonly"
WRITE = "https://www.googleapis.com/auth/calendar.events"
PAGE = 250
SCOPES = web.RequestKey("scopes", list)


@dataclass
class Grant:
    client_id: str
    scopes: list[str]
    revoked: bool = False


@dataclass
class Failure:
    path: str
    status: int
    reason: str
    times: int
    retry_after: int | None = None
    echo: bool = False  # the message quotes the request's Authorization header


@dataclass
class State:
    clients: dict[str, str] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)  # refresh token -> grant
    tokens: dict[str, list[str]] = field(default_factory=dict)  # access token -> scopes
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    calendars: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    expires_in: int = 3600
    lost_answers: int = 0  # inserts made whose answer is lost (the connection is cut)
    endless: bool = False  # every list answer is an empty page that says more follow
    state_override: str | None = None
    last_auth_query: dict[str, str] = field(default_factory=dict)


def error(status: int, reason: str, message: str) -> web.Response:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }
    return web.json_response(body, status=status)


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(value)
    return moment


def bounds(event: dict[str, Any]) -> tuple[datetime, datetime]:
    """An event's start and end as instants (all-day events at UTC midnight)."""

    def instant(end: dict[str, str]) -> datetime:
        if "date" in end:
            return datetime.fromisoformat(end["date"] + "T00:00:00+00:00")
        return datetime.fromisoformat(end["dateTime"].replace("Z", "+00:00"))

    return instant(event["start"]), instant(event["end"])


def expand(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A recurring event's instances (RRULE FREQ=DAILY|WEEKLY;COUNT=n)."""
    rule = next((r for r in event.get("recurrence", []) if r.startswith("RRULE:")), None)
    if rule is None:
        return [event]
    parts = dict(p.split("=") for p in rule[len("RRULE:") :].split(";"))
    step = timedelta(days=7 if parts["FREQ"] == "WEEKLY" else 1)
    start, end = bounds(event)
    out = []
    for n in range(int(parts["COUNT"])):
        first = start + n * step
        instance = {k: v for k, v in event.items() if k != "recurrence"}
        zone = event["start"].get("timeZone")
        instance["start"] = {"dateTime": first.isoformat(), **({"timeZone": zone} if zone else {})}
        instance["end"] = {
            "dateTime": (end + n * step).isoformat(),
            **({"timeZone": zone} if zone else {}),
        }
        stamp = first.astimezone(tz=None).strftime("%Y%m%dT%H%M%SZ")
        instance["id"] = f"{event['id']}_{stamp}"
        instance["recurringEventId"] = event["id"]
        out.append(instance)
    return out


class GoogleServer(ThreadedServer):
    def __init__(self) -> None:
        self.state = State()
        self._ids = itertools.count(1)
        super().__init__(self._app)

    # -- set-up the tests use ---------------------------------------------------------------

    @property
    def api_endpoint(self) -> str:
        return f"{self.url}/calendar/v3/"

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "api_endpoint": self.api_endpoint,
            "token_uri": f"{self.url}/token",
            "auth_uri": f"{self.url}/auth",
            **extra,
        }

    def client(self) -> tuple[str, str]:
        client_id = f"{secrets.token_hex(6)}.apps.googleusercontent.com"
        secret = f"GOCSPX-canary-{secrets.token_hex(12)}"
        self.state.clients[client_id] = secret
        return client_id, secret

    def grant(self, client_id: str, scopes: list[str] | None = None) -> str:
        refresh = f"1//canary-refresh-{secrets.token_hex(16)}"
        self.state.grants[refresh] = Grant(client_id, scopes or [READ])
        return refresh

    def add_calendar(
        self, calendar_id: str, summary: str, zone: str, primary: bool = False
    ) -> None:
        self.state.calendars[calendar_id] = {
            "kind": "calendar#calendarListEntry",
            "id": calendar_id,
            "summary": summary,
            "timeZone": zone,
            "accessRole": "owner",
            **({"primary": True} if primary else {}),
        }
        self.state.events.setdefault(calendar_id, [])

    def add_event(self, calendar_id: str, **event: Any) -> dict[str, Any]:
        event.setdefault("id", f"evt{next(self._ids):06d}")
        event.setdefault("status", "confirmed")
        event.setdefault("kind", "calendar#event")
        event.setdefault("htmlLink", f"https://calendar.example.test/event?eid={event['id']}")
        self.state.events[calendar_id].append(event)
        return event

    def fail(
        self,
        path: str,
        status: int,
        reason: str,
        times: int = 1,
        retry_after: int | None = None,
        *,
        echo: bool = False,
    ) -> None:
        """The next *times* requests whose path contains *path* get this error (its message
        quoting the request's ``Authorization`` header if *echo*, as a debugging proxy
        might)."""
        self.state.failures.append(Failure(path, status, reason, times, retry_after, echo))

    def api_requests(
        self, contains: str = "/calendar/v3/"
    ) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.state.requests if contains in r[1]]

    # -- the wire --------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/token", self._token)
        app.router.add_get("/auth", self._auth)
        base = "/calendar/v3"
        app.router.add_get(f"{base}/users/me/calendarList", self._calendar_list)
        app.router.add_get(base + "/calendars/{cal}/events", self._list_events)
        app.router.add_post(base + "/calendars/{cal}/events", self._insert)
        app.router.add_get(base + "/calendars/{cal}/events/{eid}", self._get_event)
        app.router.add_patch(base + "/calendars/{cal}/events/{eid}", self._patch)
        app.router.add_post(f"{base}/freeBusy", self._free_busy)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.state.requests.append((request.method, request.path, dict(request.query)))
        for failure in self.state.failures:
            if failure.times > 0 and failure.path in request.path:
                failure.times -= 1
                message = f"injected {failure.reason}"
                if failure.echo:
                    message += f" for {request.headers.get('Authorization', '')}"
                response = error(failure.status, failure.reason, message)
                if failure.retry_after is not None:
                    response.headers["Retry-After"] = str(failure.retry_after)
                return response
        if request.path.startswith("/calendar/v3/"):
            header = request.headers.get("Authorization", "")
            scopes = self.state.tokens.get(header.removeprefix("Bearer "))
            if not header.startswith("Bearer ") or scopes is None:
                return error(401, "authError", "Request had invalid authentication credentials.")
            request[SCOPES] = scopes
        return await handler(request)

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        fields = {k: str(v) for k, v in form.items()}
        self.state.token_requests.append(fields)
        client_id = fields.get("client_id", "")
        if self.state.clients.get(client_id) != fields.get("client_secret") or not client_id:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant_type = fields.get("grant_type")
        if grant_type == "refresh_token":
            grant = self.state.grants.get(fields.get("refresh_token", ""))
            if grant is None or grant.revoked or grant.client_id != client_id:
                return web.json_response(
                    {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    },
                    status=400,
                )
            asked = fields.get("scope", "").split()
            if any(s not in grant.scopes for s in asked):
                return web.json_response({"error": "invalid_scope"}, status=400)
            return web.json_response(self._issue(grant.scopes))
        if grant_type == "authorization_code":
            pending = self.state.codes.pop(fields.get("code", ""), None)
            verifier = fields.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if (
                pending is None
                or pending["client_id"] != client_id
                or pending["redirect_uri"] != fields.get("redirect_uri")
                or pending["challenge"] != challenge
            ):
                return web.json_response({"error": "invalid_grant"}, status=400)
            refresh = self.grant(client_id, pending["scopes"])
            return web.json_response({**self._issue(pending["scopes"]), "refresh_token": refresh})
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    def _issue(self, scopes: list[str]) -> dict[str, Any]:
        token = f"ya29.canary-access-{secrets.token_hex(12)}"
        self.state.tokens[token] = scopes
        return {
            "access_token": token,
            "expires_in": self.state.expires_in,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }

    async def _auth(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.state.last_auth_query = query
        redirect = query.get("redirect_uri", "")
        parts = urlsplit(redirect)
        if (
            query.get("client_id") not in self.state.clients
            or query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or parts.scheme != "http"
            or parts.hostname != "127.0.0.1"
        ):
            return web.Response(status=400, text="Error 400: invalid_request")
        code = f"4/canary-code-{secrets.token_hex(8)}"
        self.state.codes[code] = {
            "client_id": query["client_id"],
            "redirect_uri": redirect,
            "challenge": query["code_challenge"],
            "scopes": query.get("scope", "").split(),
        }
        state = self.state.state_override or query.get("state", "")
        raise web.HTTPFound(f"{redirect}?{urlencode({'state': state, 'code': code})}")

    async def _calendar_list(self, request: web.Request) -> web.Response:
        items = list(self.state.calendars.values())
        return web.json_response(self._page(request, items, "calendar#calendarList"))

    def _page(self, request: web.Request, items: list[Any], kind: str) -> dict[str, Any]:
        size = min(int(request.query.get("maxResults", PAGE)), 2500)
        offset = int(request.query.get("pageToken", "0") or 0)
        page: dict[str, Any] = {"kind": kind, "items": items[offset : offset + size]}
        if self.state.endless:
            return {"kind": kind, "items": [], "nextPageToken": str(offset + 1)}
        if offset + size < len(items):
            page["nextPageToken"] = str(offset + size)
        return page

    def resolve(self, calendar_id: str) -> str:
        """ "primary" is the signed-in person's own calendar, as in Google's paths."""
        if calendar_id == "primary":
            return next((k for k, c in self.state.calendars.items() if c.get("primary")), "")
        return calendar_id

    def _calendar(self, request: web.Request) -> list[dict[str, Any]] | None:
        return self.state.events.get(self.resolve(request.match_info["cal"]))

    async def _list_events(self, request: web.Request) -> web.Response:
        events = self._calendar(request)
        if events is None:
            return error(404, "notFound", "Not Found")
        query = request.query
        single = query.get("singleEvents") == "true"
        if query.get("orderBy") == "startTime" and not single:
            return error(
                400, "invalid", "The requested ordering is not available for the particular query."
            )
        try:
            low, high = parse_time(query.get("timeMin")), parse_time(query.get("timeMax"))
        except ValueError:
            return error(400, "badRequest", "Bad Request")
        found = [i for e in events for i in (expand(e) if single else [e])]
        if low is not None:
            found = [e for e in found if bounds(e)[1] > low]
        if high is not None:
            found = [e for e in found if bounds(e)[0] < high]
        if q := query.get("q"):
            text = q.lower()
            keys = ("summary", "description", "location")
            found = [e for e in found if any(text in str(e.get(k, "")).lower() for k in keys)]
        if query.get("orderBy") == "startTime":
            found.sort(key=lambda e: bounds(e)[0])
        return web.json_response(self._page(request, found, "calendar#events"))

    async def _get_event(self, request: web.Request) -> web.Response:
        events = self._calendar(request) or []
        wanted = request.match_info["eid"]
        for event in (i for e in events for i in expand(e)):
            if event["id"] == wanted:
                return web.json_response(event)
        for event in events:
            if event["id"] == wanted:
                return web.json_response(event)
        return error(404, "notFound", "Not Found")

    def _can_write(self, request: web.Request) -> bool:
        return WRITE in request[SCOPES]

    async def _insert(self, request: web.Request) -> web.Response:
        if not self._can_write(request):
            return error(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        if self._calendar(request) is None:
            return error(404, "notFound", "Not Found")
        body = await request.json()
        for end in ("start", "end"):
            if end not in body:
                return error(400, "required", f"Missing {end} time.")
        calendar = self.resolve(request.match_info["cal"])
        if any(e["id"] == body.get("id") for e in self.state.events[calendar]):
            return error(409, "duplicate", "The requested identifier already exists.")
        event = self.add_event(calendar, **body)
        if self.state.lost_answers > 0:
            self.state.lost_answers -= 1
            assert request.transport is not None
            request.transport.abort()  # made, but the caller never hears so
            raise web.HTTPInternalServerError
        return web.json_response(event)

    async def _patch(self, request: web.Request) -> web.Response:
        if not self._can_write(request):
            return error(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        for event in self._calendar(request) or []:
            if event["id"] == request.match_info["eid"]:
                event.update(await request.json())
                return web.json_response(event)
        return error(404, "notFound", "Not Found")

    async def _free_busy(self, request: web.Request) -> web.Response:
        body = await request.json()
        low, high = parse_time(body["timeMin"]), parse_time(body["timeMax"])
        assert low is not None
        assert high is not None
        calendars: dict[str, Any] = {}
        for item in body.get("items", []):
            events = self.state.events.get(self.resolve(item["id"]))
            if events is None:
                calendars[item["id"]] = {"errors": [{"domain": "global", "reason": "notFound"}]}
                continue
            busy = [
                {"start": s.isoformat(), "end": e.isoformat()}
                for s, e in sorted(bounds(i) for ev in events for i in expand(ev))
                if e > low and s < high
            ]
            calendars[item["id"]] = {"busy": busy}
        return web.json_response(
            {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": calendars,
            }
        )


def as_json(value: Any) -> str:
    return json.dumps(value, default=str)


__all__ = ["READ", "WRITE", "GoogleServer", "as_json", "date"]
