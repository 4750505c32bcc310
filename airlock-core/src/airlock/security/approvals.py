"""Access requests and their approval by a TOTP code (see docs/security.md).

An agent's request becomes one rendered prompt, sent by every active notifier. The person
answers with a code on any channel (a reply bound to the prompt, a bare code when exactly
one request is pending, or ``airlock approve``); the code is verified once, and the
requester collects its session token with the request's claim secret, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
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
    ApprovalsLocked,
    Forbidden,
    InvalidCode,
    InvalidInput,
    NotFound,
    NotPending,
    RateLimited,
)
from airlock.framework.connectors import OperationSpec
from airlock.framework.notifiers import Notice
from airlock.framework.policies import Decision, Policy, PolicyContext, Stage, evaluate
from airlock.framework.spending import usd
from airlock.gateway.budgets import requested_budget
from airlock.gateway.services import Service
from airlock.models import Access, RequestStatus
from airlock.security.audit import Auditor
from airlock.security.channels import Channels
from airlock.security.peers import Peer
from airlock.security.prompts import render_prompt
from airlock.security.sessions import SessionManager
from airlock.security.totp import TotpVerifier
from airlock.settings.config import AirlockConfig
from airlock.state.store import AccessRequest, StateStore, WriteApproval

log = get_logger("airlock.approvals")

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}$")
MAX_WAIT = 60.0
# More open prompts than a person can read are noise at best and cover for a prompt
# slipped among them at worst: an agent flooding the phone is refused instead.
MAX_PENDING = 10


def canonical_params(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def operation_hash(service: str, operation: str, params: Mapping[str, Any]) -> str:
    """What a write approval is bound to: service, operation and canonical parameters."""
    text = canonical_params({"service": service, "operation": operation, "params": params})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    def __init__(
        self,
        *,
        store: StateStore,
        sessions: SessionManager,
        verifier: TotpVerifier,
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
        self._verifier = verifier
        self._config = config
        self._clock = clock
        self._audit = audit
        self._services = services
        self._policies = policies
        self._channels = channels
        self._operation_spec = operation_spec
        self._changed = asyncio.Condition()
        self._collect_lock = asyncio.Lock()
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
            peer, services, access, operation, ttl, body.sensitive, budget, now
        )
        if joined is not None:
            return joined
        if len(self.pending()) >= MAX_PENDING:
            raise RateLimited(
                f"{MAX_PENDING} requests are already waiting for the person",
                hint="wait for an answer, or for pending requests to expire",
            )
        request_id = "req_" + secrets.token_urlsafe(12)
        claim = "clm_" + secrets.token_urlsafe(24)
        request = AccessRequest(
            id=request_id,
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
            sensitive=body.sensitive,
            budget_nano=budget,
        )
        request = _with_fingerprint(request)
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

    def _new_code(self) -> str:
        pending = {r.code for r in self._store.list_requests(RequestStatus.PENDING)}
        for _ in range(100):
            code = "".join(secrets.choice(CROCKFORD) for _ in range(4))
            if code not in pending and self._store.get_request_by_code(code) is None:
                return code
        raise RuntimeError("could not find a free request code")

    def pending(self) -> list[PendingRequest]:
        now = self._clock.now()
        return [
            PendingRequest(
                id=r.id,
                code=r.code,
                fingerprint=r.fingerprint,
                services=list(r.services),
                access=r.access,
                reason=r.reason,
                ttl=r.ttl,
                requester_uid=r.requester_uid,
                agent=r.agent,
                operation=r.operation,
                budget_usd=usd(r.budget_nano) if r.budget_nano is not None else None,
                created_at=_iso(r.created_at),
                expires_at=_iso(r.expires_at),
            )
            for r in self._store.list_requests(RequestStatus.PENDING)
            if r.expires_at > now
        ]

    def find(self, ref: str) -> AccessRequest:
        """A request by id (``req_...``) or by its 4-character code."""
        request = None
        if ref.startswith("req_") and len(ref) < 64:
            request = self._store.get_request(ref)
        elif CODE_PATTERN.match(ref.upper()):
            request = self._store.get_request_by_code(ref.upper())
        if request is None:
            raise NotFound(f"no request {ref[:40]!r}", hint="`airlock pending` lists them")
        return request

    def _pending(self, ref: str) -> AccessRequest:
        request = self.find(ref)
        if request.status == RequestStatus.PENDING and request.expires_at <= self._clock.now():
            self._store.set_request_status(
                request.id, RequestStatus.EXPIRED, decided_at=self._clock.now()
            )
            request = self.find(request.id)
        if request.status != RequestStatus.PENDING:
            raise NotPending(f"request {request.code} is {request.status}, not pending")
        return request

    # -- decisions --------------------------------------------------------------------

    async def verify_code(
        self,
        code: str,
        *,
        channel: str,
        actor: Mapping[str, Any],
        subject: Mapping[str, Any],
    ) -> int:
        """Accept *code* once, audited: every code the person sends comes through here.

        A wrong or reused code is recorded as ``approval_failed`` and counts toward the
        lockout (announced on every channel when it starts); a good one is recorded as
        ``totp_verified``. *subject* says what the code was for (a request, a login).
        """
        try:
            step = self._verifier.verify(code)
        except InvalidCode as exc:
            await self._audit.append(
                "approval_failed", **actor, **subject, channel=channel, why=exc.message
            )
            state = self._verifier.lock_state()
            if state.locked:
                await self._lock_notice(state.locked_until)
            raise
        except ApprovalsLocked:
            await self._audit.append(
                "approval_failed", **actor, **subject, channel=channel, why="locked"
            )
            raise
        await self._audit.append("totp_verified", **actor, **subject, channel=channel, step=step)
        return step

    async def approve(
        self, ref: str, code: str, *, peer: Peer | None, channel: str
    ) -> AccessRequest:
        request = self._pending(ref)
        actor = peer.audit_fields() if peer else {}
        await self.verify_code(
            code,
            channel=channel,
            actor=actor,
            subject={"request": request.id, "request_code": request.code},
        )
        now = self._clock.now()
        if not self._store.set_request_status(request.id, RequestStatus.APPROVED, decided_at=now):
            raise NotPending(f"request {request.code} was answered meanwhile")
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
        request = self._pending(ref)
        now = self._clock.now()
        if not self._store.set_request_status(request.id, RequestStatus.DENIED, decided_at=now):
            raise NotPending(f"request {request.code} was answered meanwhile")
        actor = peer.audit_fields() if peer else {}
        await self._audit.append(
            "access_denied",
            **actor,
            request=request.id,
            request_code=request.code,
            channel=channel,
            reason="denied by the person",
        )
        self._spawn(
            self._channels.notify_all(
                Notice(text=f"Denied {request.code}.", request_id=request.id, outcome="denied")
            )
        )
        await self._wake()
        return self.find(request.id)

    async def _lock_notice(self, until: float | None) -> None:
        when = _iso(until).strftime("%H:%M:%S UTC") if until else "later"
        await self._audit.append("approvals_locked", until=until)
        await self._channels.notify_all(
            Notice(text=f"Airlock: too many wrong codes. Approvals are locked until {when}.")
        )

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
            request = self._expire_if_due(request)
            if request.status != RequestStatus.PENDING:
                break
            remaining = loop_deadline - loop.time()
            if remaining <= 0:
                break
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))
            request = self._store.get_request(request_id) or request
        state = RequestState.model_validate({"id": request.id, "status": request.status})
        if request.status == RequestStatus.APPROVED:
            state.session = await self._issue_once(request, peer)
        return state

    def _expire_if_due(self, request: AccessRequest) -> AccessRequest:
        if request.status == RequestStatus.PENDING and request.expires_at <= self._clock.now():
            self._store.set_request_status(
                request.id, RequestStatus.EXPIRED, decided_at=self._clock.now()
            )
            return self._store.get_request(request.id) or request
        return request

    async def _issue_once(self, request: AccessRequest, peer: Peer) -> SessionGrant | None:
        async with self._collect_lock:
            fresh = self._store.get_request(request.id)
            if fresh is None or fresh.session_id is not None:
                return None  # the token was already handed out
            session, token = self._sessions.create(
                request.services,
                request.access,
                request.requester_uid,
                request_id=request.id,
                ttl=request.ttl,
                sensitive=request.sensitive,
            )
            if request.budget_nano is not None:
                self._store.open_budget(session.id, request.budget_nano)
            await self._audit.append(
                "session_issued",
                **peer.audit_fields(),
                session=session.id,
                request=request.id,
                services=list(session.services),
                access=session.access,
                expires_at=session.expires_at,
                budget_usd=usd(request.budget_nano) if request.budget_nano is not None else None,
            )
            self._store.set_request_status(
                request.id,
                RequestStatus.APPROVED,
                decided_at=fresh.decided_at or self._clock.now(),
                session_id=session.id,
                only_if=RequestStatus.APPROVED,
            )
            if request.operation is not None:
                self._store.bind_write_approval(request.id, session.id)
        return SessionGrant(
            token=token,
            id=session.id,
            services=list(session.services),
            access=session.access,
            expires_at=_iso(session.expires_at),
        )

    # -- expiry -----------------------------------------------------------------------

    async def expire_due(self) -> None:
        now = self._clock.now()
        for request in self._store.pending_requests_due(now):
            if self._store.set_request_status(request.id, RequestStatus.EXPIRED, decided_at=now):
                await self._audit.append(
                    "access_denied",
                    request=request.id,
                    request_code=request.code,
                    reason="approval timed out",
                    uid=request.requester_uid,
                )
        for session in self._sessions.expire_due():
            await self._audit.append("session_expired", session=session.id, uid=session.uid)
        await self._wake()

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def revoke_everything(self, *, channel: str) -> list[str]:
        """Revoke every active session of every uid: the person's panic button."""
        now = self._clock.now()
        revoked = []
        for session in self._store.list_sessions(active_at=now):
            self._sessions.revoke(session.id, session.uid)
            await self._audit.append(
                "session_revoked", session=session.id, uid=session.uid, channel=channel
            )
            revoked.append(session.id)
        return revoked

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
