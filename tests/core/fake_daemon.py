"""A stand-in for ``airlock serve`` that speaks the HTTP API v1 wire format (docs/api.md).

It runs aiohttp on a real Unix socket in a thread of its own, so the production client
code (async, blocking twin, MCP server, even in a subprocess) talks to it exactly as to
the real daemon. The person's answer is scripted: ``answer`` is what the person does
with every request (approve, deny, let it expire, or nothing), ``answer_after_polls`` how
many long-polls pass first. Everything received is recorded for the tests to assert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airlock import api
from airlock.models import first_problem


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListParams(_Params):
    folder: str = "INBOX"
    limit: int = Field(20, ge=1, le=100)
    unread_only: bool = False


class SearchParams(_Params):
    query: str
    folder: str = "INBOX"
    limit: int = Field(20, ge=1, le=100)


class GetParams(_Params):
    id: str
    max_chars: int = 20000


class FolderParams(_Params):
    folder: str = "INBOX"


class MarkParams(_Params):
    id: str
    folder: str = "INBOX"


PARAMS: dict[str, type[BaseModel]] = {}


def _op(name: str, access: str, params: type[BaseModel], description: str) -> api.OperationInfo:
    PARAMS[name] = params
    return api.OperationInfo(
        name=name,
        access=access,
        description=description,
        params_schema=params.model_json_schema(),
    )


MAIL_OPERATIONS = [
    _op("list_messages", "read", ListParams, "List messages in a folder, newest first."),
    _op("search", "read", SearchParams, "Search messages."),
    _op("get_message", "read", GetParams, "One message with its text."),
    _op("count_unread", "read", FolderParams, "Count unread messages."),
    _op("mark_read", "write", MarkParams, "Mark a message read."),
]
# What airlock-mail's connectors declare: tool names of the original Airlock's MCP server.
MAIL_ALIASES = [
    api.ToolAliasInfo(
        tool="airlock_list_emails",
        operation="list_messages",
        description="List messages in a mail folder, newest first.",
        args={"limit": "limit", "folder": "folder"},
    ),
    api.ToolAliasInfo(
        tool="airlock_search_emails",
        operation="search",
        description="Search mail.",
        args={"query": "query", "limit": "limit"},
    ),
    api.ToolAliasInfo(
        tool="airlock_get_email",
        operation="get_message",
        description="Read one message.",
        args={"message_id": "id"},
    ),
    api.ToolAliasInfo(
        tool="airlock_count_unread",
        operation="count_unread",
        description="Count unread messages in the inbox.",
    ),
]
SERVICES = [
    api.ServiceInfo(
        name="gmail",
        connector="gmail",
        title="Gmail",
        operations=MAIL_OPERATIONS,
        tool_aliases=MAIL_ALIASES,
    ),
    api.ServiceInfo(
        name="work-mail",
        connector="imap",
        title="IMAP",
        operations=MAIL_OPERATIONS,
        tool_aliases=MAIL_ALIASES,
    ),
    api.ServiceInfo(
        name="calendar",
        connector="gcal",
        title="Google Calendar",
        operations=[_op("today", "read", _Params, "Today's events.")],
    ),
]
GOOD_TOTP = "123456"


@dataclass
class FakeRequest:
    id: str
    code: str
    claim: str
    body: api.AccessRequestIn
    status: str = "pending"
    polls: int = 0
    collected: bool = False


@dataclass
class FakeSession:
    id: str
    token: str
    services: list[str]
    access: str
    operation: api.OperationRef | None
    expires_at: datetime
    uses: int = 0


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    session_id: str | None


@dataclass
class FakeDaemon:
    socket: Path
    answer: str = "approve"  # approve | deny | expire | ignore
    answer_after_polls: int = 0
    services: list[api.ServiceInfo] = field(default_factory=lambda: list(SERVICES))
    fail_next: tuple[int, bytes] | None = None
    requests: list[FakeRequest] = field(default_factory=list)
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    seen_paths: list[str] = field(default_factory=list)
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    # operations a policy makes ask for their own approval although they are reads
    needs_approval: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> FakeDaemon:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.add_routes(
            [
                web.get("/v1/status", self.status),
                web.get("/v1/services", self.list_services),
                web.post("/v1/requests", self.create_request),
                web.get("/v1/requests", self.pending),
                web.get("/v1/requests/{id}", self.poll),
                web.post("/v1/requests/{id}/approve", self.approve),
                web.post("/v1/requests/{id}/deny", self.deny),
                web.get("/v1/sessions", self.list_sessions),
                web.delete("/v1/sessions", self.revoke_all),
                web.delete("/v1/sessions/{id}", self.revoke),
                web.post("/v1/ops/{service}/{operation}", self.operation),
                web.post("/v1/ops/{service}/{operation}/check", self.check),
                web.get("/v1/credentials", self.list_credentials),
                web.post("/v1/credentials/{service}", self.add_credentials),
                web.get("/v1/credentials/{service}/{field}", self.get_credential),
                web.delete("/v1/credentials/{service}", self.remove_credentials),
                web.get("/v1/audit", self.audit),
            ]
        )
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.socket)).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen_paths.append(f"{request.method} {request.path}")
        if self.fail_next is not None:
            status, body = self.fail_next
            self.fail_next = None
            return web.Response(status=status, body=body, content_type="application/json")
        response: web.StreamResponse = await handler(request)
        return response

    # -- helpers ------------------------------------------------------------------

    @staticmethod
    def error(status: int, code: str, message: str, **extra: str) -> web.Response:
        detail = api.ErrorDetail(code=code, message=message, **extra)
        return web.json_response(api.ErrorOut(error=detail).model_dump(mode="json"), status=status)

    @staticmethod
    def reply(model: BaseModel, status: int = 200) -> web.Response:
        return web.json_response(model.model_dump(mode="json"), status=status)

    def _find(self, ref: str) -> FakeRequest | None:
        return next((r for r in self.requests if ref in (r.id, r.code)), None)

    def _grant(self, req: FakeRequest) -> api.SessionGrant:
        session = FakeSession(
            id=f"ses_{next(self._ids)}",
            token="alk_" + secrets.token_urlsafe(32),
            services=req.body.services,
            access=req.body.access,
            operation=req.body.operation,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        self.sessions[session.id] = session
        return api.SessionGrant(
            token=session.token,
            id=session.id,
            services=session.services,
            access=session.access,
            expires_at=session.expires_at,
        )

    def _info(self, s: FakeSession) -> api.SessionInfo:
        return api.SessionInfo(
            id=s.id,
            uid=os.getuid(),
            services=s.services,
            access=s.access,
            created_at=s.expires_at - timedelta(hours=1),
            expires_at=s.expires_at,
            use_count=s.uses,
        )

    @property
    def tokens(self) -> list[str]:
        return [s.token for s in self.sessions.values()]

    # -- endpoints ----------------------------------------------------------------

    async def status(self, request: web.Request) -> web.Response:
        return self.reply(
            api.DaemonStatus(
                version="0.1.0",
                mode="personal",
                totp_enrolled=True,
                locked=False,
                pending=sum(r.status == "pending" for r in self.requests),
                sessions=[self._info(s) for s in self.sessions.values()],
                services=[s.name for s in self.services],
                pid=4242,
            )
        )

    async def list_services(self, request: web.Request) -> web.Response:
        return self.reply(api.ServiceList(services=self.services))

    async def create_request(self, request: web.Request) -> web.Response:
        try:
            body = api.AccessRequestIn.model_validate_json(await request.read())
        except ValidationError as exc:
            problem = first_problem(exc)
            return self.error(400, "invalid_input", problem.message, field=problem.field)
        known = {s.name for s in self.services}
        unknown = [s for s in body.services if s not in known]
        if unknown:
            return self.error(404, "not_found", f"unknown service {unknown[0]!r}")
        n = next(self._ids)
        req = FakeRequest(f"req_{n}", f"C{n:03d}", secrets.token_urlsafe(16), body)
        self.requests.append(req)
        created = api.AccessRequestCreated(
            id=req.id,
            code=req.code,
            claim=req.claim,
            fingerprint="ab12-cd34",
            expires_at=datetime.now(UTC) + timedelta(minutes=5),
        )
        return self.reply(created, status=202)

    async def pending(self, request: web.Request) -> web.Response:
        listed = [
            api.PendingRequest(
                id=r.id,
                code=r.code,
                fingerprint="ab12-cd34",
                services=r.body.services,
                access=r.body.access,
                reason=r.body.reason,
                ttl=3600,
                requester_uid=1000,
                created_at=datetime.now(UTC),
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
            )
            for r in self.requests
            if r.status == "pending"
        ]
        return self.reply(api.PendingList(requests=listed))

    async def poll(self, request: web.Request) -> web.Response:
        req = self._find(request.match_info["id"])
        if req is None:
            return self.error(404, "not_found", "no such request")
        if request.headers.get("X-Airlock-Claim") != req.claim:
            return self.error(403, "forbidden", "only the requester may collect this request")
        req.polls += 1
        if req.status == "pending" and req.polls > self.answer_after_polls:
            req.status = {"approve": "approved", "deny": "denied", "expire": "expired"}.get(
                self.answer, "pending"
            )
        if req.status == "pending" and self.answer == "ignore":
            await asyncio.sleep(min(float(request.query.get("wait", "0")), 2.0))
        state = api.RequestState(id=req.id, status=req.status)  # type: ignore[arg-type]
        if req.status == "approved" and not req.collected:
            req.collected = True
            state.session = self._grant(req)
        return self.reply(state)

    async def approve(self, request: web.Request) -> web.Response:
        req = self._find(request.match_info["id"])
        if req is None:
            return self.error(404, "not_found", "no such request")
        body = api.ApproveIn.model_validate_json(await request.read())
        if body.totp != GOOD_TOTP:
            return self.error(403, "invalid_code", "wrong or already used code")
        if req.status != "pending":
            return self.error(409, "not_pending", "request already answered")
        req.status = "approved"
        return self.reply(api.Decided(id=req.id, code=req.code, status=req.status))

    async def deny(self, request: web.Request) -> web.Response:
        req = self._find(request.match_info["id"])
        if req is None:
            return self.error(404, "not_found", "no such request")
        req.status = "denied"
        return self.reply(api.Decided(id=req.id, code=req.code, status=req.status))

    async def list_sessions(self, request: web.Request) -> web.Response:
        listed = [self._info(s) for s in self.sessions.values()]
        return self.reply(api.SessionList(sessions=listed))

    async def revoke(self, request: web.Request) -> web.Response:
        session = self.sessions.pop(request.match_info["id"], None)
        if session is None:
            return self.error(404, "not_found", "no such session")
        self.revoked.append(session.id)
        return self.reply(api.Revoked(revoked=[session.id]))

    async def revoke_all(self, request: web.Request) -> web.Response:
        ids = list(self.sessions)
        self.sessions.clear()
        self.revoked.extend(ids)
        return self.reply(api.Revoked(revoked=ids))

    async def check(self, request: web.Request) -> web.Response:
        """Like the daemon: the operation's own model judges the parameters; no session."""
        service, name = request.match_info["service"], request.match_info["operation"]
        info = next((s for s in self.services if s.name == service), None)
        if info is None or not any(o.name == name for o in info.operations):
            return self.error(404, "not_found", f"no operation {service}.{name}")
        params = api.OperationIn.model_validate_json(await request.read()).params
        try:
            model = PARAMS[name].model_validate(params)
        except ValidationError as exc:
            problem = first_problem(exc, within="params")
            return self.error(400, "invalid_input", str(problem), field=problem.field)
        return self.reply(api.OperationIn(params=model.model_dump(mode="json")))

    async def operation(self, request: web.Request) -> web.Response:
        service, name = request.match_info["service"], request.match_info["operation"]
        auth = request.headers.get("Authorization", "")
        session = next((s for s in self.sessions.values() if auth == f"Bearer {s.token}"), None)
        if session is None:
            return self.error(401, "unauthenticated", "no or unknown session token")
        info = next((s for s in self.services if s.name == service), None)
        op = next((o for o in info.operations if o.name == name), None) if info else None
        if op is None:
            return self.error(404, "not_found", f"no operation {service}.{name}")
        if service not in session.services:
            return self.error(403, "forbidden", f"the session does not cover {service}")
        params = api.OperationIn.model_validate_json(await request.read()).params
        try:
            PARAMS[name].model_validate(params)
        except ValidationError as exc:
            problem = first_problem(exc)
            return self.error(400, "invalid_input", str(problem), field=problem.field)
        if op.access == "write" or name in self.needs_approval:
            bound = session.operation
            if bound is None or (bound.service, bound.name, bound.params) != (
                service,
                name,
                params,
            ):
                return self.error(
                    403, "approval_required", f"{service}.{name} needs its own approval"
                )
            self.sessions.pop(session.id)  # one use
        session.uses += 1
        self.calls.append(Call(service, name, params, session.id))
        result: Any = {"echo": params, "messages": [{"id": "1.1", "subject": "hello"}]}
        if name == "count_unread":
            result = 3
        out = api.OperationOut(result=result, service=service, operation=name)
        return self.reply(out)

    async def list_credentials(self, request: web.Request) -> web.Response:
        listed = [{"service": s.name, "stored": s.name in self.credentials} for s in self.services]
        return self.reply(api.CredentialListing(credentials=listed))

    async def add_credentials(self, request: web.Request) -> web.Response:
        body = api.CredentialsIn.model_validate_json(await request.read())
        if body.totp != GOOD_TOTP:
            return self.error(403, "invalid_code", "wrong or already used code")
        service = request.match_info["service"]
        self.credentials[service] = dict(body.fields)
        check = {"ok": True, "summary": "connected: 3 messages"}
        return self.reply(
            api.CredentialsOut(service=service, fields=sorted(body.fields), check=check)
        )

    async def get_credential(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Airlock-TOTP") != GOOD_TOTP:
            return self.error(403, "invalid_code", "wrong or already used code")
        service, name = request.match_info["service"], request.match_info["field"]
        value = self.credentials.get(service, {}).get(name)
        if value is None:
            return self.error(404, "not_found", f"no credential {name} for {service}")
        return self.reply(api.CredentialValue(service=service, field=name, value=value))

    async def remove_credentials(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Airlock-TOTP") != GOOD_TOTP:
            return self.error(403, "invalid_code", "wrong or already used code")
        service = request.match_info["service"]
        removed = self.credentials.pop(service, {})
        return self.reply(api.CredentialsOut(service=service, fields=sorted(removed)))

    async def audit(self, request: web.Request) -> web.Response:
        event = {"seq": 1, "event": "operation", "query": dict(request.query)}
        return self.reply(api.AuditEvents(events=[event]))


@contextlib.contextmanager
def running(socket: Path, **options: Any) -> Any:
    daemon = FakeDaemon(socket, **options).start()
    try:
        yield daemon
    finally:
        daemon.stop()
