"""The base of :class:`~airlock.security.approvals.ApprovalService`: its collaborators,
finding and listing requests, and the expiry every decision checks first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from airlock.api import AccessRequestCreated, PendingRequest
from airlock.common.clock import Clock
from airlock.errors import NotFound, NotPending
from airlock.framework.connectors import OperationSpec
from airlock.framework.policies import Policy
from airlock.framework.spending import usd
from airlock.gateway.context import DaemonContext
from airlock.gateway.services import Service
from airlock.models import RequestStatus
from airlock.security.audit import Auditor
from airlock.security.channels import Channels
from airlock.security.code_checks import CodeChecker
from airlock.security.peers import Peer, speaks_for_owner
from airlock.security.request_codes import CODE_PATTERN
from airlock.security.sessions import SessionManager
from airlock.settings.config import AirlockConfig
from airlock.state.store import AccessRequest, StateStore

MAX_WAIT = 60.0


def iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def declared_spec(service: Service, name: str) -> OperationSpec:
    """An operation the service's connector declares (no connector is opened to find it)."""
    return service.connector.spec(name)


SpecLookup = Callable[[Service, str], Awaitable[OperationSpec]]
"""How to find a service's operation: declared, or listed when its connector opened."""


class ApprovalCore:
    """What every part of the approval flow shares (see ``ApprovalService``)."""

    def __init__(
        self,
        context: DaemonContext,
        *,
        codes: CodeChecker,
        channels: Channels,
        operation_spec: SpecLookup = declared_spec,
    ) -> None:
        self._store: StateStore = context.store
        self._sessions: SessionManager = context.sessions
        self._codes = codes
        self._config: AirlockConfig = context.config
        self._clock: Clock = context.clock
        self._audit: Auditor = context.audit
        self._services: Mapping[str, Service] = context.services
        self._policies: list[Policy] = context.policies
        self._channels = channels
        self._operation_spec = operation_spec
        self._describe = context.describe
        self._targets = context.targets
        self._changed = asyncio.Condition()
        self._decide = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def carry_over(self, old: ApprovalCore) -> None:
        """Decide under *old*'s lock: a reload's new service runs beside the old one
        while that finishes a reply in hand, and a request is decided once at a time
        across both (each would write its record, and only one change could be made)."""
        self._decide = old._decide

    # -- requests ---------------------------------------------------------------------

    def pending(self, viewer: Peer | None = None) -> list[PendingRequest]:
        """Requests waiting for the person that *viewer* may see (None: the person)."""
        now = self._clock.now()
        return [
            listed(r, target=self.target(r, viewer))
            for r in self._store.list_requests(RequestStatus.PENDING)
            if r.expires_at > now and may_see(viewer, r)
        ]

    def target(self, request: AccessRequest, viewer: Peer | None = None) -> str | None:
        """What the write acts on, as its service described it, for *viewer*: the person
        (None), or the owner or root looking at another uid's request. Never for the
        requester's own uid: the agent holds no session to read it (in personal mode,
        where the agent is the person's uid, only the prompt and the dashboard show it)."""
        if viewer is not None and viewer.uid == request.requester_uid:
            return None
        return self._targets.get(request.id)

    def sole_pending(self, settle: float) -> str | None:
        """The id of the one request pending, if no other waited in the last *settle*
        seconds (approved ones aside), else None.

        A code sent without naming its prompt was meant for the request the person read.
        If another one stopped waiting moments ago (the agent withdrew it, it timed out),
        the one pending now may be a swap the person has not read.
        """
        pending = self.pending()
        if len(pending) != 1:
            return None
        waited = self._store.waited_since(self._clock.now() - settle)
        return pending[0].id if [r.id for r in waited] == [pending[0].id] else None

    def uncollected(self, viewer: Peer | None = None) -> list[PendingRequest]:
        """Approved requests whose session was not collected yet (and still may be)."""
        now = self._clock.now()
        return [
            listed(r, collect_by=self._collect_by(r))
            for r in self._store.uncollected_requests()
            if self._collect_by(r) > now and may_see(viewer, r)
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
        if request is None or not may_see(viewer, request):
            raise NotFound(f"no request {ref[:40]!r}", hint="`airlock pending` lists them")
        return request

    async def _pending(self, ref: str, viewer: Peer | None) -> AccessRequest:
        """The request, if it is still pending by the clock (lock held)."""
        request = await self._expire_if_due(self.find(ref, viewer))
        if request.status != RequestStatus.PENDING:
            raise NotPending(f"request {request.code} is {request.status}, not pending")
        return request

    # -- expiry -----------------------------------------------------------------------

    async def _expire_if_due(self, request: AccessRequest) -> AccessRequest:
        """*request*, expired first (audited) if the clock says its time is up (lock held).

        A pending request expires at ``expires_at``; an approved one whose session was
        not collected expires ``approvals.timeout`` after its approval. The request is
        read again first: one listed before the lock was taken (the sweep's, a long
        poll's) may have been decided or revoked meanwhile.
        """
        request = self._store.get_request(request.id) or request
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

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- revoking ---------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, within: float) -> None:
        """Let the work under way end (a prompt waiting for its service to say what the
        write acts on, a notice being sent) for up to *within* seconds, then close: a
        reload must not lose a prompt that nothing would send again."""
        try:
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=within)
        finally:  # the daemon stopping meanwhile: stopped too
            await self.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def may_see(viewer: Peer | None, request: AccessRequest) -> bool:
    """The person (a phone channel: None), the daemon's owner and root see every
    request; any other uid only its own."""
    return viewer is None or speaks_for_owner(viewer) or viewer.uid == request.requester_uid


def created(request: AccessRequest, claim: str) -> AccessRequestCreated:
    """The answer to whoever asked (or asked again): the request's claim goes to them alone."""
    return AccessRequestCreated(
        id=request.id,
        code=request.code,
        claim=claim,
        fingerprint=request.fingerprint,
        expires_at=iso(request.expires_at),
    )


def listed(
    request: AccessRequest, *, collect_by: float | None = None, target: str | None = None
) -> PendingRequest:
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
        target=target,
        created_at=iso(request.created_at),
        expires_at=iso(collect_by if collect_by is not None else request.expires_at),
    )
