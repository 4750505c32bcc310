"""After the person's decision: collecting the session, expiry, purging, revocation."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from airlock.api import RequestState, SessionGrant
from airlock.errors import Forbidden, NotFound
from airlock.framework.operations import operation_hash
from airlock.framework.spending import usd
from airlock.gateway.budgets import budget_cap
from airlock.models import Access, RequestStatus
from airlock.security._approval_core import MAX_WAIT, ApprovalCore, iso
from airlock.security.peers import Peer, speaks_for_owner
from airlock.security.request_codes import claim_hash
from airlock.state.store import AccessRequest, RevocationNotWritten, Session


class SessionLifecycle(ApprovalCore):
    """The half of ``ApprovalService`` that hands out and ends sessions."""

    # -- collecting the session -------------------------------------------------------

    async def collect(
        self, request_id: str, claim: str | None, *, peer: Peer, wait: float
    ) -> RequestState:
        request = self._store.get_request(request_id) if len(request_id) < 64 else None
        if request is None:
            raise NotFound(f"no request {request_id[:40]!r}")
        if not claim or not hmac.compare_digest(request.claim_hash, claim_hash(claim)):
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
            budget = self._budget(fresh)
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
                budget_usd=usd(budget) if budget is not None else None,
            )
            with self._store.transaction():
                self._store.insert_session(session)
                if budget is not None:
                    self._store.open_budget(session.id, budget)
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
            expires_at=iso(session.expires_at),
        )
        return grant, fresh

    def _budget(self, request: AccessRequest) -> int | None:
        """The budget a spend approval's session gets: the amount approved, lowered to the
        cap in force now (a reload may have lowered it since the request)."""
        if request.budget_nano is None:
            return None
        cap = budget_cap(request.services[0], self._services, self._config.permissions)
        return request.budget_nano if cap is None else min(request.budget_nano, cap)

    async def expire_due(self) -> None:
        """The periodic sweep: tidies what the clock already refuses at use time."""
        now = self._clock.now()
        due = self._store.pending_requests_due(now) + self._store.uncollected_requests()
        async with self._decide:
            for request in due:
                await self._expire_if_due(request)
        for session in self._sessions.newly_expired():
            await self._audit.append("session_expired", session=session.id, uid=session.uid)
            self._sessions.note_expiry(session.id)
        await self._wake()

    async def purge_finished(self) -> None:
        """Delete requests and sessions that ended more than ``approvals.retention`` ago."""
        before = self._clock.now() - self._config.approvals.retention
        requests, sessions = self._store.count_finished(before)
        if requests or sessions:
            # Recorded first: if the record cannot be written, nothing is deleted.
            await self._audit.append(
                "state_purged", requests=requests, sessions=sessions, ended_before=before
            )
            self._store.purge_finished(before)

    async def revoke_session(self, session_id: str, peer: Peer) -> str:
        """Revoke one of *peer*'s sessions (the daemon's owner and root: anyone's), once
        the record of it is durable."""
        found = self._store.get_session(session_id)
        uid = found.uid if found is not None and speaks_for_owner(peer) else peer.uid
        session = self._sessions.get(session_id, uid)
        async with self._decide:
            if session.revoked_at is None:
                await self._audit.append(
                    "session_revoked",
                    **peer.audit_fields(),
                    session=session.id,
                    owner_uid=session.uid,
                )
                self._sessions.revoke(session.id, uid)
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
        revoked and the requests cancelled.

        Once the database refuses a write, the rest are recorded and held without waiting
        for it again: all of them are refused at once all the same, and
        ``RevocationNotWritten`` is raised at the end."""
        now = self._clock.now()
        cancelled: list[str] = []
        async with self._decide:
            revoked, held = await self._end_sessions(
                (
                    session
                    for session in self._store.list_sessions(uid=uid, active_at=now)
                    if not (spare_person and session.access is Access.PERSON)
                ),
                now,
                **(actor or {}),
                channel=channel,
            )
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
                held = _write_or_hold(
                    held,
                    partial(self._store.cancel_approval, request.id, at=now),
                    partial(self._store.hold_cancellation, request.id, at=now),
                )
                cancelled.append(request.id)
        await self._wake()
        if held is not None:
            raise held
        return revoked, cancelled

    async def end_logins(self, *, why: str) -> list[str]:
        """End every person (dashboard) login, each once its record is on disk: they were
        made with a code of a TOTP secret that is no longer in force."""
        now = self._clock.now()
        async with self._decide:
            ended, held = await self._end_sessions(
                (s for s in self._store.list_sessions(active_at=now) if s.access is Access.PERSON),
                now,
                reason=why,
            )
        if held is not None:
            raise held
        return ended

    async def _end_sessions(
        self, sessions: Iterable[Session], now: float, **fields: Any
    ) -> tuple[list[str], RevocationNotWritten | None]:
        """End *sessions*, each once its ``session_revoked`` record (with *fields*) is on
        disk; their ids, and the database's refusal if it refused one. From then on the
        others are recorded and held without waiting for it again, refused already."""
        ended: list[str] = []
        held: RevocationNotWritten | None = None
        for session in sessions:
            await self._audit.append(
                "session_revoked", **fields, session=session.id, owner_uid=session.uid
            )
            held = _write_or_hold(
                held,
                partial(self._store.revoke_session, session.id, at=now),
                partial(self._store.hold_revocation, session.id, at=now),
            )
            ended.append(session.id)
        return ended, held

    async def revoke_everything(self, *, channel: str) -> tuple[list[str], list[str]]:
        """Every session of every uid and every uncollected approval: the panic button."""
        return await self.revoke_all(uid=None, channel=channel)


def _write_or_hold(
    held: RevocationNotWritten | None, write: Callable[[], object], hold: Callable[[], None]
) -> RevocationNotWritten | None:
    """Write a revocation whose record is on disk, or, once the database has refused one
    (*held*), hold it without waiting for the database again; the refusal so far."""
    if held is not None:
        hold()
        return held
    try:
        write()
    except RevocationNotWritten as exc:
        return exc
    return None
