"""Access requests and their approval by a TOTP code (see docs/security.md).

An agent's request becomes one rendered prompt, sent by every active notifier. The person
answers with a code on any channel (a reply bound to the prompt, a bare code when exactly
one request is pending, or ``airlock approve``); the code is verified once, and the
requester collects its session token with the request's claim secret, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import itertools
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from airlock.api import (
    AccessRequestCreated,
    AccessRequestIn,
    PendingRequest,
    RequestState,
    SessionGrant,
)
from airlock.common.clock import Clock
from airlock.common.logs import get_logger
from airlock.errors import (
    AccessDenied,
    Forbidden,
    InvalidInput,
    NotFound,
    NotPending,
    OutOfCodes,
    RateLimited,
)
from airlock.framework.connectors import OperationSpec
from airlock.framework.notifiers import Notice
from airlock.framework.policies import (
    Decision,
    Policy,
    PolicyContext,
    Stage,
    canonical_params,
    evaluate,
    operation_hash,
)
from airlock.framework.spending import usd
from airlock.gateway.budgets import requested_budget
from airlock.gateway.services import Service
from airlock.models import Access, RequestStatus
from airlock.security.audit import Auditor
from airlock.security.channels import Channels
from airlock.security.code_checks import CodeChecker, CodePurpose
from airlock.security.peers import Peer, speaks_for_owner
from airlock.security.prompts import render_prompt
from airlock.security.sessions import SessionManager
from airlock.settings.config import AirlockConfig
from airlock.state.store import AccessRequest, StateStore, WriteApproval

log = get_logger("airlock.approvals")

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}$")
MAX_WAIT = 60.0
# More open prompts than a person can read are noise at best and cover for a prompt
# slipped among them at worst: an agent flooding the phone is refused instead. The cap
# is per uid, so one agent user cannot fill the queue for the others, under a global cap.
MAX_PENDING = 10
MAX_PENDING_ALL = 30


def canonical_operation_params(spec: OperationSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate *params* with the operation's model (or JSON Schema) and return them in
    canonical form."""
    model = spec.parse_params(params, within="params")
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


async def declared_spec(service: Service, name: str) -> OperationSpec:
    """An operation the service's connector declares (no connector is opened to find it)."""
    return service.connector.spec(name)


SpecLookup = Callable[[Service, str], Awaitable[OperationSpec]]
"""How to find a service's operation: declared, or listed when its connector opened."""


def _claim_hash(claim: str) -> str:
    return hashlib.sha256(claim.encode("utf-8")).hexdigest()


def _iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class ApprovalService:
    """Requests, the person's decisions, collection and revocation.

    Every state change here happens only after its audit record is durable (the record
    first, then the change), so a failed audit write leaves the state as it was and the
    caller gets ``AuditError`` (503). One lock orders the decisions, so nothing can
    change a request between its record and its change.
    """

    def __init__(
        self,
        *,
        store: StateStore,
        sessions: SessionManager,
        codes: CodeChecker,
        config: AirlockConfig,
        clock: Clock,
        audit: Auditor,
        services: Mapping[str, Service],
        policies: list[Policy],
        channels: Channels,
        operation_spec: SpecLookup = declared_spec,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._codes = codes
        self._config = config
        self._clock = clock
        self._audit = audit
        self._services = services
        self._policies = policies
        self._channels = channels
        self._operation_spec = operation_spec
        self._changed = asyncio.Condition()
        self._decide = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- requests ---------------------------------------------------------------------

    async def create_request(self, body: AccessRequestIn, peer: Peer) -> AccessRequestCreated:
        services = list(dict.fromkeys(body.services))
        access = body.access
        operation: dict[str, Any] | None = None
        for name in services:
            if name not in self._services:
                raise NotFound(f"no service named {name!r}", field="services")
        if body.operation is not None:
            op = body.operation
            service = self._services.get(op.service)
            if service is None:
                raise NotFound(f"no service named {op.service!r}", field="operation.service")
            spec = await self._operation_spec(service, op.name)
            if spec.access is Access.SPEND:
                raise InvalidInput(
                    f'{op.service}.{op.name} spends money: ask for access "spend" with a '
                    "budget instead of approving one call",
                    field="operation",
                )
            params = canonical_operation_params(spec, op.params)
            operation = {"service": op.service, "name": op.name, "params": params}
            services, access = (
                [op.service],
                (Access.WRITE if spec.access is Access.WRITE else Access.READ),
            )
        budget = requested_budget(body, self._services, self._config.permissions)
        ttl = self._sessions.ttl_seconds(body.ttl)
        if operation is not None:
            ttl = min(ttl, self._config.approvals.timeout)
        now = self._clock.now()
        for name in services:
            ctx = PolicyContext(
                stage=Stage.REQUEST,
                service=name,
                access=access,
                operation=operation["name"] if operation else None,
                params=operation["params"] if operation else {},
                uid=peer.uid,
                now=now,
                permissions=self._config.permissions.for_service(name),
                rate_limit=self._config.permissions.rate_limit,
            )
            verdict = evaluate(self._policies, ctx)
            if verdict.decision is Decision.DENY:
                await self._audit.append(
                    "access_denied",
                    **peer.audit_fields(),
                    services=services,
                    access=access,
                    reason=verdict.reason,
                    policy=verdict.policy,
                )
                raise AccessDenied(f"refused by policy {verdict.policy}: {verdict.reason}")
        joined = await self._join_pending(
            peer,
            services,
            access,
            operation,
            ttl,
            body.sensitive and operation is None,
            budget,
            now,
        )
        if joined is not None:
            return joined
        claim = "clm_" + secrets.token_urlsafe(24)
        async with self._decide:
            self._check_room(peer.uid)
            request = _with_fingerprint(
                AccessRequest(
                    id="req_" + secrets.token_urlsafe(12),
                    code=self._new_code(),
                    claim_hash=_claim_hash(claim),
                    fingerprint="",
                    services=tuple(services),
                    access=access,
                    reason=body.reason,
                    ttl=ttl,
                    operation=operation,
                    requester_uid=peer.uid,
                    requester_pid=peer.pid,
                    status=RequestStatus.PENDING,
                    created_at=now,
                    expires_at=now + self._config.approvals.timeout,
                    agent=body.agent,
                    # A write session runs one call and reads nothing: nothing to unmask.
                    sensitive=body.sensitive and operation is None,
                    budget_nano=budget,
                )
            )
            await self._audit.append(
                "access_requested",
                **peer.audit_fields(),
                request=request.id,
                request_code=request.code,
                services=list(request.services),
                access=access,
                ttl=ttl,
                reason=body.reason[:300],
                operation=operation,
                agent=body.agent,
                budget_usd=usd(budget) if budget is not None else None,
            )
            self._store.insert_request(request)
        self._spawn(self._channels.send_prompt(render_prompt(request, process=peer.process)))
        return AccessRequestCreated(
            id=request.id,
            code=request.code,
            claim=claim,
            fingerprint=request.fingerprint,
            expires_at=_iso(request.expires_at),
        )

    async def _join_pending(
        self,
        peer: Peer,
        services: list[str],
        access: Access,
        operation: dict[str, Any] | None,
        ttl: int,
        sensitive: bool,
        budget: int | None,
        now: float,
    ) -> AccessRequestCreated | None:
        """The same uid asking again for exactly what one of its pending requests asks
        (after its wait ran out, say) joins that request instead of prompting the person
        twice: the code and fingerprint stay, a new claim replaces the old one, so only
        the latest asker collects the session. Anything that differs (services, access,
        the exact operation, a longer TTL, budget, sensitivity) is a new request."""
        for request in self._store.list_requests(RequestStatus.PENDING):
            same = (
                request.requester_uid == peer.uid
                and request.expires_at > now
                and sorted(request.services) == sorted(services)
                and request.access == access
                and request.operation == operation
                and request.ttl >= ttl
                and request.sensitive == sensitive
                and request.budget_nano == budget
            )
            if not same:
                continue
            claim = "clm_" + secrets.token_urlsafe(24)
            await self._audit.append(
                "access_request_joined",
                **peer.audit_fields(),
                request=request.id,
                request_code=request.code,
            )
            if not self._store.replace_claim(request.id, _claim_hash(claim)):
                continue  # decided meanwhile: ask anew
            return AccessRequestCreated(
                id=request.id,
                code=request.code,
                claim=claim,
                fingerprint=request.fingerprint,
                expires_at=_iso(request.expires_at),
            )
        return None

    def _check_room(self, uid: int) -> None:
        """Each uid may keep MAX_PENDING requests waiting, all uids MAX_PENDING_ALL."""
        if self._store.count_pending(uid) >= MAX_PENDING:
            raise RateLimited(
                f"{MAX_PENDING} of your requests are already waiting for the person",
                hint="wait for an answer, or for pending requests to expire",
            )
        if self._store.count_pending() >= MAX_PENDING_ALL:
            raise RateLimited(
                f"{MAX_PENDING_ALL} requests are already waiting for the person",
                hint="wait for an answer, or for pending requests to expire",
            )

    def _new_code(self) -> str:
        """A request code no stored request holds; codes come back once purged."""
        for _ in range(20):
            code = "".join(secrets.choice(CROCKFORD) for _ in range(4))
            if self._store.get_request_by_code(code) is None:
                return code
        used = self._store.used_codes()
        free = [c for c in _all_codes() if c not in used]
        if not free:
            raise OutOfCodes(
                "no free request code: every code is held by a stored request",
                hint="finished requests are deleted after approvals.retention; "
                "answer or deny the waiting ones",
            )
        return secrets.choice(free)

    def pending(self, viewer: Peer | None = None) -> list[PendingRequest]:
        """Requests waiting for the person that *viewer* may see (None: the person)."""
        now = self._clock.now()
        return [
            _listed(r)
            for r in self._store.list_requests(RequestStatus.PENDING)
            if r.expires_at > now and _may_see(viewer, r)
        ]

    def uncollected(self, viewer: Peer | None = None) -> list[PendingRequest]:
        """Approved requests whose session was not collected yet (and still may be)."""
        now = self._clock.now()
        return [
            _listed(r, collect_by=self._collect_by(r))
            for r in self._store.uncollected_requests()
            if self._collect_by(r) > now and _may_see(viewer, r)
        ]

    def _collect_by(self, request: AccessRequest) -> float:
        return (request.decided_at or request.created_at) + self._config.approvals.timeout

    def find(self, ref: str, viewer: Peer | None = None) -> AccessRequest:
        """A request by id (``req_...``) or by its 4-character code, if *viewer* may see it."""
        request = None
        if ref.startswith("req_") and len(ref) < 64:
            request = self._store.get_request(ref)
        elif CODE_PATTERN.match(ref.upper()):
            request = self._store.get_request_by_code(ref.upper())
        if request is None or not _may_see(viewer, request):
            raise NotFound(f"no request {ref[:40]!r}", hint="`airlock pending` lists them")
        return request

    async def _pending(self, ref: str, viewer: Peer | None) -> AccessRequest:
        """The request, if it is still pending by the clock (lock held)."""
        request = await self._expire_if_due(self.find(ref, viewer))
        if request.status != RequestStatus.PENDING:
            raise NotPending(f"request {request.code} is {request.status}, not pending")
        return request

    # -- decisions --------------------------------------------------------------------

    async def approve(
        self, ref: str, code: str, *, peer: Peer | None, channel: str
    ) -> AccessRequest:
        """Approve with a TOTP code; any allowed uid may send one (the code is the proof)."""
        async with self._decide:
            request = await self._pending(ref, None)
            actor = peer.audit_fields() if peer else {}
            purpose = CodePurpose("approve", request=request.id, request_code=request.code)
            await self._codes.check(code, channel=channel, purpose=purpose, actor=actor)
            now = self._clock.now()
            with self._store.transaction():
                self._store.set_request_status(request.id, RequestStatus.APPROVED, decided_at=now)
                if request.operation is not None:
                    op = request.operation
                    self._store.insert_write_approval(
                        WriteApproval(
                            request_id=request.id,
                            operation_hash=operation_hash(op["service"], op["name"], op["params"]),
                            created_at=now,
                            expires_at=now + request.ttl,
                        )
                    )
        self._spawn(
            self._channels.notify_all(
                Notice(text=f"Approved {request.code}.", request_id=request.id, outcome="approved")
            )
        )
        await self._wake()
        return self.find(request.id)

    async def deny(self, ref: str, *, peer: Peer | None, channel: str) -> AccessRequest:
        """Deny; a uid may deny only its own requests (the owner and root any)."""
        async with self._decide:
            request = await self._pending(ref, peer)
            actor = peer.audit_fields() if peer else {}
            await self._audit.append(
                "access_denied",
                **actor,
                request=request.id,
                request_code=request.code,
                channel=channel,
                reason="denied by the person",
            )
            now = self._clock.now()
            self._store.set_request_status(request.id, RequestStatus.DENIED, decided_at=now)
        self._spawn(
            self._channels.notify_all(
                Notice(text=f"Denied {request.code}.", request_id=request.id, outcome="denied")
            )
        )
        await self._wake()
        return self.find(request.id)

    # -- collecting the session -------------------------------------------------------

    async def collect(
        self, request_id: str, claim: str | None, *, peer: Peer, wait: float
    ) -> RequestState:
        request = self._store.get_request(request_id) if len(request_id) < 64 else None
        if request is None:
            raise NotFound(f"no request {request_id[:40]!r}")
        if not claim or not hmac.compare_digest(request.claim_hash, _claim_hash(claim)):
            raise Forbidden(
                "the claim secret of this request is missing or wrong",
                hint="send the claim from the request's answer in X-Airlock-Claim",
            )
        if peer.uid != request.requester_uid:
            raise Forbidden("this request belongs to another user")
        # Waiting is real time (a long-poll); expiry is decided by the injected clock.
        loop = asyncio.get_running_loop()
        loop_deadline = loop.time() + max(0.0, min(wait, MAX_WAIT))
        while True:
            async with self._decide:
                request = await self._expire_if_due(request)
            if request.status != RequestStatus.PENDING:
                break
            remaining = loop_deadline - loop.time()
            if remaining <= 0:
                break
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))
            request = self._store.get_request(request_id) or request
        session = None
        if request.status == RequestStatus.APPROVED:
            session, request = await self._issue_once(request, peer)
        state = RequestState.model_validate({"id": request.id, "status": request.status})
        state.session = session
        return state

    async def _issue_once(
        self, request: AccessRequest, peer: Peer
    ) -> tuple[SessionGrant | None, AccessRequest]:
        """The session of an approved request, the first time it is collected in time."""
        async with self._decide:
            fresh = await self._expire_if_due(self._store.get_request(request.id) or request)
            if fresh.status != RequestStatus.APPROVED or fresh.session_id is not None:
                return None, fresh  # handed out already, revoked, or not collected in time
            op = fresh.operation
            session, token = self._sessions.prepare(
                fresh.services,
                fresh.access,
                fresh.requester_uid,
                request_id=fresh.id,
                ttl=fresh.ttl,
                sensitive=fresh.sensitive,
                starts_at=fresh.decided_at,
                operation_hash=operation_hash(op["service"], op["name"], op["params"])
                if op
                else None,
            )
            await self._audit.append(
                "session_issued",
                **peer.audit_fields(),
                session=session.id,
                request=fresh.id,
                services=list(session.services),
                access=session.access,
                operation=op,
                expires_at=session.expires_at,
                budget_usd=usd(fresh.budget_nano) if fresh.budget_nano is not None else None,
            )
            with self._store.transaction():
                self._store.insert_session(session)
                if fresh.budget_nano is not None:
                    self._store.open_budget(session.id, fresh.budget_nano)
                self._store.set_request_status(
                    fresh.id,
                    RequestStatus.APPROVED,
                    decided_at=fresh.decided_at or self._clock.now(),
                    session_id=session.id,
                    only_if=RequestStatus.APPROVED,
                )
                if op is not None:
                    self._store.bind_write_approval(fresh.id, session.id)
        grant = SessionGrant(
            token=token,
            id=session.id,
            services=list(session.services),
            access=session.access,
            expires_at=_iso(session.expires_at),
        )
        return grant, fresh

    # -- expiry -----------------------------------------------------------------------

    async def _expire_if_due(self, request: AccessRequest) -> AccessRequest:
        """*request*, expired first (audited) if the clock says its time is up (lock held).

        A pending request expires at ``expires_at``; an approved one whose session was
        not collected expires ``approvals.timeout`` after its approval.
        """
        now = self._clock.now()
        if request.status == RequestStatus.PENDING and request.expires_at <= now:
            why, event = "approval timed out", "access_denied"
        elif (
            request.status == RequestStatus.APPROVED
            and request.session_id is None
            and self._collect_by(request) <= now
        ):
            why, event = "approved but not collected in time", "approval_expired"
        else:
            return request
        await self._audit.append(
            event,
            request=request.id,
            request_code=request.code,
            reason=why,
            uid=request.requester_uid,
        )
        self._store.set_request_status(
            request.id, RequestStatus.EXPIRED, decided_at=now, only_if=request.status
        )
        return self._store.get_request(request.id) or request

    async def expire_due(self) -> None:
        """The periodic sweep: tidies what the clock already refuses at use time."""
        now = self._clock.now()
        due = self._store.pending_requests_due(now) + self._store.uncollected_requests()
        async with self._decide:
            for request in due:
                await self._expire_if_due(request)
        for session in self._sessions.expire_due():
            await self._audit.append("session_expired", session=session.id, uid=session.uid)
        await self._wake()

    async def purge_finished(self) -> None:
        """Delete requests and sessions that ended more than ``approvals.retention`` ago."""
        before = self._clock.now() - self._config.approvals.retention
        requests, sessions = self._store.purge_finished(before)
        if requests or sessions:
            await self._audit.append(
                "state_purged", requests=requests, sessions=sessions, ended_before=before
            )

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- revoking ---------------------------------------------------------------------

    async def revoke_session(self, session_id: str, peer: Peer) -> str:
        """Revoke one of *peer*'s sessions, once the record of it is durable."""
        session = self._sessions.get(session_id, peer.uid)
        async with self._decide:
            if session.revoked_at is None:
                await self._audit.append(
                    "session_revoked", **peer.audit_fields(), session=session.id
                )
                self._sessions.revoke(session.id, peer.uid)
        return session.id

    async def revoke_all(
        self,
        *,
        uid: int | None,
        channel: str,
        actor: Mapping[str, Any] | None = None,
        spare_person: bool = False,
    ) -> tuple[list[str], list[str]]:
        """Revoke every active session of *uid* (None: of every uid), and cancel the
        approved requests whose session was not collected yet, each audited first.
        *spare_person* keeps the person's own (dashboard) sessions. Returns the sessions
        revoked and the requests cancelled."""
        now = self._clock.now()
        revoked: list[str] = []
        cancelled: list[str] = []
        async with self._decide:
            for session in self._store.list_sessions(uid=uid, active_at=now):
                if spare_person and session.access is Access.PERSON:
                    continue
                await self._audit.append(
                    "session_revoked",
                    **(actor or {}),
                    session=session.id,
                    owner_uid=session.uid,
                    channel=channel,
                )
                self._store.revoke_session(session.id, at=now)
                revoked.append(session.id)
            for request in self._store.uncollected_requests():
                if uid is not None and request.requester_uid != uid:
                    continue
                await self._audit.append(
                    "approval_revoked",
                    **(actor or {}),
                    request=request.id,
                    request_code=request.code,
                    owner_uid=request.requester_uid,
                    channel=channel,
                )
                self._store.set_request_status(
                    request.id,
                    RequestStatus.REVOKED,
                    decided_at=now,
                    only_if=RequestStatus.APPROVED,
                )
                cancelled.append(request.id)
        await self._wake()
        return revoked, cancelled

    async def revoke_everything(self, *, channel: str) -> tuple[list[str], list[str]]:
        """Every session of every uid and every uncollected approval: the panic button."""
        return await self.revoke_all(uid=None, channel=channel)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _may_see(viewer: Peer | None, request: AccessRequest) -> bool:
    """The person (a phone channel: None), the daemon's owner and root see every
    request; any other uid only its own."""
    return viewer is None or speaks_for_owner(viewer) or viewer.uid == request.requester_uid


def _listed(request: AccessRequest, *, collect_by: float | None = None) -> PendingRequest:
    return PendingRequest(
        id=request.id,
        code=request.code,
        fingerprint=request.fingerprint,
        services=list(request.services),
        access=request.access,
        reason=request.reason,
        ttl=request.ttl,
        requester_uid=request.requester_uid,
        agent=request.agent,
        operation=request.operation,
        budget_usd=usd(request.budget_nano) if request.budget_nano is not None else None,
        status=request.status,
        created_at=_iso(request.created_at),
        expires_at=_iso(collect_by if collect_by is not None else request.expires_at),
    )


@functools.cache
def _all_codes() -> tuple[str, ...]:
    return tuple("".join(c) for c in itertools.product(CROCKFORD, repeat=4))


def _with_fingerprint(request: AccessRequest) -> AccessRequest:
    """A short digest of what is asked, shown to both the agent and the person."""
    material = canonical_params(
        {
            "id": request.id,
            "services": list(request.services),
            "access": request.access,
            "ttl": request.ttl,
            "reason": request.reason,
            "operation": request.operation,
        }
        | ({"budget_nano": request.budget_nano} if request.budget_nano is not None else {})
    )
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:8].upper()
    return replace(request, fingerprint=f"{digest[:4]}-{digest[4:]}")
