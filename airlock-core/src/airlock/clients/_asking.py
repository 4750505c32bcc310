"""Asking the daemon for access and waiting for the person's answer: submit a request,
long-poll it, and resume a request this client is still waiting on (``StillPending``)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from airlock import api
from airlock.clients._answers import StillPending, outcome
from airlock.clients._http import DaemonConnection, build
from airlock.clients._person_calls import PersonCalls, segment
from airlock.clients._wallet import WaitCallback, WaitStatus
from airlock.models import Access, RequestStatus

log = logging.getLogger("airlock.client")

CLAIM_HEADER = "X-Airlock-Claim"
# One long-poll holds at most this long, and this long when someone shows progress.
LONG_POLL = 30
PROGRESS_POLL = 5

WaitKey = tuple[str, ...]


def _ttl(ttl: str | int | None) -> str | None:
    return f"{ttl}s" if isinstance(ttl, int) else ttl


class Asking(PersonCalls):
    """The part of ``AirlockClient`` that asks and waits."""

    _conn: DaemonConnection
    agent: str | None
    approval_wait: float
    _waiting: dict[WaitKey, api.AccessRequestCreated]
    """Requests this client is waiting on, by what they ask for (see StillPending)."""

    async def submit_request(
        self,
        services: Sequence[str],
        reason: str,
        *,
        access: Access = Access.READ,
        ttl: str | int | None = None,
        operation: api.OperationRef | None = None,
        sensitive: bool = False,
        budget_usd: float | None = None,
    ) -> api.AccessRequestCreated:
        """``POST /v1/requests``: the request's id, short code, fingerprint and claim."""
        body = build(
            api.AccessRequestIn,
            services=list(services),
            access=access,
            reason=reason,
            ttl=_ttl(ttl),
            operation=operation,
            agent=self.agent,
            sensitive=sensitive,
            budget_usd=budget_usd,
        )
        return await self._conn.fetch(api.AccessRequestCreated, "POST", "/v1/requests", body=body)

    async def await_approval(
        self,
        created: api.AccessRequestCreated,
        *,
        wait: float | None = None,
        on_wait: WaitCallback | None = None,
    ) -> api.SessionGrant:
        """Long-poll the request until the person answers; the granted session.

        Raises AccessDenied when denied, ApprovalTimedOut when the request expired or
        *wait* seconds passed. *on_wait* is called before the first poll and after each
        unanswered one (every few seconds when given, so progress can be shown).
        """
        total = self.approval_wait if wait is None else wait
        step = PROGRESS_POLL if on_wait else LONG_POLL
        started = time.monotonic()
        log.info("waiting for approval of request %s (%s)", created.code, created.fingerprint)
        if on_wait:
            await on_wait(WaitStatus.of(created, 0.0, total))
        while True:
            remaining = total - (time.monotonic() - started)
            hold = max(0, min(step, math.ceil(remaining)))
            state = await self._conn.fetch(
                api.RequestState,
                "GET",
                f"/v1/requests/{segment(created.id)}",
                params={"wait": hold},
                headers={CLAIM_HEADER: created.claim},
                read_timeout=hold + self._conn.timeout,
            )
            if state.status != RequestStatus.PENDING:
                return outcome(state, created)
            elapsed = time.monotonic() - started
            if elapsed >= total:
                raise StillPending(created, total)
            if on_wait:
                await on_wait(WaitStatus.of(created, elapsed, total))

    async def _approval(
        self,
        key: WaitKey,
        submit: Callable[[], Awaitable[api.AccessRequestCreated]],
        *,
        wait: float | None,
        on_wait: WaitCallback | None,
    ) -> api.SessionGrant:
        """Ask (or resume the unexpired request this client already made for *key*) and
        wait. Only a wait that ran out keeps the request for the next ask."""
        created = self._waiting.get(key)
        if created is None or created.expires_at <= datetime.now(UTC):
            created = await submit()
            self._waiting[key] = created
        try:
            grant = await self.await_approval(created, wait=wait, on_wait=on_wait)
        except StillPending:
            raise
        except BaseException:
            self._waiting.pop(key, None)
            raise
        self._waiting.pop(key, None)
        return grant
