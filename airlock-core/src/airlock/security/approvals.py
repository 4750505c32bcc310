"""Access requests and their approval by a TOTP code (see docs/security.md).

An agent's request becomes one rendered prompt, sent by every active notifier. The person
answers with a code on any channel (a reply bound to the prompt, a bare code when exactly
one request is pending, or ``airlock approve``); the code is verified once, and the
requester collects its session token with the request's claim secret, exactly once.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from airlock.api import AccessRequestCreated, AccessRequestIn
from airlock.errors import (
    AccessDenied,
    InvalidInput,
    NotFound,
    RateLimited,
)
from airlock.framework.connectors import OperationSpec
from airlock.framework.notifiers import Notice
from airlock.framework.operations import canonical_operation_params, operation_hash
from airlock.framework.policies import Decision, PolicyContext, Stage, evaluate
from airlock.framework.spending import usd
from airlock.gateway.budgets import requested_budget
from airlock.models import Access, RequestStatus
from airlock.security._approval_core import (
    MAX_WAIT,
    SpecLookup,
    created,
    declared_spec,
)
from airlock.security._lifecycle import SessionLifecycle
from airlock.security.code_checks import CodePurpose
from airlock.security.peers import Peer
from airlock.security.prompts import render_prompt
from airlock.security.request_codes import (
    CODE_PATTERN,
    CROCKFORD,
    claim_hash,
    fingerprinted,
    new_claim,
    new_code,
)
from airlock.security.targets import LOOKING, look_up
from airlock.state.store import AccessRequest, WriteApproval

__all__ = [
    "CODE_PATTERN",
    "CROCKFORD",
    "MAX_PENDING",
    "MAX_PENDING_ALL",
    "MAX_WAIT",
    "ApprovalService",
    "SpecLookup",
    "canonical_operation_params",
    "declared_spec",
]

# More open prompts than a person can read are noise at best and cover for a prompt
# slipped among them at worst: an agent flooding the phone is refused instead. The cap
# is per uid, so one agent user cannot fill the queue for the others, under a global cap.
MAX_PENDING = 10
MAX_PENDING_ALL = 30
MAX_UNAPPROVED = 6 * MAX_PENDING
"""Requests a uid may make within ``approvals.timeout`` that are not approved: one that
an agent withdraws (or the person denies) frees its place among the waiting at once, and
asking and withdrawing in a loop sent the phone ~50 prompts a second (and used up the
request codes in hours). Approved ones do not count: each takes a fresh code. At 60 in
5 minutes a loop sends at most 12 prompts a minute and uses ~120,000 of the 1,048,576
codes in the week finished requests are kept."""


class ApprovalService(SessionLifecycle):
    """Requests, the person's decisions, collection and revocation.

    Every state change here happens only after its audit record is durable (the record
    first, then the change), so a failed audit write leaves the state as it was and the
    caller gets ``AuditError`` (503). One lock orders the decisions, so nothing can
    change a request between its record and its change.

    The parts: ``ApprovalCore`` (collaborators, finding, expiry), this class (new
    requests and the decisions), ``SessionLifecycle`` (collection, expiry sweep,
    purge, revocation).
    """

    # -- requests ---------------------------------------------------------------------

    async def create_request(self, body: AccessRequestIn, peer: Peer) -> AccessRequestCreated:
        services = list(dict.fromkeys(body.services))
        access = body.access
        operation: dict[str, Any] | None = None
        write: OperationSpec | None = None
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
            write = spec if spec.access is Access.WRITE else None
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
        claim = new_claim()
        async with self._decide:
            self._check_room(peer.uid)
            request = fingerprinted(
                AccessRequest(
                    id="req_" + secrets.token_urlsafe(12),
                    code=new_code(self._store),
                    claim_hash=claim_hash(claim),
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
        self._spawn(self._prompt(request, write, process=peer.process))
        return created(request, claim)

    async def _prompt(
        self, request: AccessRequest, write: OperationSpec | None, *, process: str | None
    ) -> None:
        """Send the request's prompt; a write's after asking its service what it acts on
        (bounded by the host's timeout; the agent's answer never waits for it)."""
        target = None
        if write is not None and self._describe is not None and request.operation:
            self._targets.put(request.id, LOOKING)
            service = self._services[request.operation["service"]]
            target = await look_up(self._describe, service, write, request, self._audit)
            self._targets.put(request.id, target)
        await self._channels.send_prompt(render_prompt(request, process=process, target=target))

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
            claim = new_claim()
            await self._audit.append(
                "access_request_joined",
                **peer.audit_fields(),
                request=request.id,
                request_code=request.code,
            )
            if not self._store.replace_claim(request.id, claim_hash(claim)):
                continue  # decided meanwhile: ask anew
            return created(request, claim)
        return None

    def _check_room(self, uid: int) -> None:
        """Each uid may keep MAX_PENDING requests waiting, all uids MAX_PENDING_ALL, and
        a uid make MAX_UNAPPROVED not approved within ``approvals.timeout``."""
        window = self._config.approvals.timeout
        if self._store.count_unapproved_since(uid, self._clock.now() - window) >= MAX_UNAPPROVED:
            raise RateLimited(
                f"{MAX_UNAPPROVED} of your requests in the last {window / 60:g} minutes "
                "were not approved",
                hint="wait a few minutes before asking again",
            )
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

    # -- decisions --------------------------------------------------------------------

    async def approve(
        self,
        ref: str,
        code: str,
        *,
        peer: Peer | None,
        channel: str,
        by: Mapping[str, Any] | None = None,
    ) -> AccessRequest:
        """Approve with a TOTP code; any allowed uid may send one (the code is the proof).
        *by* names who did it where there is no socket peer (the dashboard's login)."""
        async with self._decide:
            request = await self._pending(ref, None)
            actor = peer.audit_fields() if peer else dict(by or {})
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

    async def deny(
        self, ref: str, *, peer: Peer | None, channel: str, by: Mapping[str, Any] | None = None
    ) -> AccessRequest:
        """Deny; a uid may deny only its own requests (the owner and root any)."""
        async with self._decide:
            request = await self._pending(ref, peer)
            actor = peer.audit_fields() if peer else dict(by or {})
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
