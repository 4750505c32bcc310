"""The sessions open now, held to the config's limits: a lower ``sessions.max_ttl`` or
``max_usd`` (a service's, or ``permissions.<service>.max_usd``) applies to them too.

At a reload, at the start and at every housekeeping round (a collect that began waiting
before a reload issues its session with the config of then: the round catches it), each
agent session whose expiry is later than its start (when it was handed out) plus
``sessions.max_ttl`` gets that expiry, or ends now if that is past, as an expiry does
(``session_expired`` recorded); each spend session whose budget limit is above its
service's cap gets the cap. What was spent or is held for a call running stays counted:
a budget now over refuses its next call (402 ``budget_exhausted``). Raising a limit
changes nothing granted. Dashboard log-ins keep their own ``dashboard`` lifetime.

Each change is audited first (``session_shortened``, ``budget_lowered``), then written.
A daemon killed between the two applies the record at its next start, whatever the
config says by then (:mod:`airlock.daemon.recorded_revocations`); a write the database
refuses is tried again at the next round, its record not written twice, and written even
if the limit was raised again meanwhile (as the next start would).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping

from airlock.common.clock import Clock
from airlock.common.logs import get_logger
from airlock.framework.spending import usd
from airlock.gateway.budgets import Budgets, budget_cap
from airlock.gateway.services import Service
from airlock.models import Access
from airlock.security.audit import Auditor
from airlock.settings.config import AirlockConfig
from airlock.state.store import Session, StateStore

__all__ = ["LoweredLimits"]

log = get_logger("airlock.daemon")

ENDED = "sessions.max_ttl was lowered below its age"


class LoweredLimits:
    def __init__(self, store: StateStore, budgets: Budgets, audit: Auditor, clock: Clock) -> None:
        self._store = store
        self._budgets = budgets
        self._audit = audit
        self._clock = clock
        self._lock = asyncio.Lock()
        self._expiries: dict[str, tuple[float, bool]] = {}
        """Expiries audited (and whether that ended the session) whose database write has
        not happened yet, by session."""
        self._limits: dict[str, int] = {}
        """Budget limits audited whose database write has not happened yet, by session."""

    async def apply(self, config: AirlockConfig, services: Mapping[str, Service]) -> None:
        """Hold every active agent session to *config*'s limits."""
        async with self._lock:
            now = self._clock.now()
            for session in self._store.list_sessions(active_at=now):
                if session.access is Access.PERSON:
                    continue
                try:
                    await self._shorten(session, config.sessions.max_ttl, now)
                    if session.access is Access.SPEND:
                        await self._lower(session, services, config)
                except sqlite3.Error as exc:  # recorded; written at the next round
                    log.warning(
                        "limit_not_written_yet", session=session.id, error=type(exc).__name__
                    )

    async def _shorten(self, session: Session, max_ttl: int, now: float) -> None:
        latest = max(session.created_at + max_ttl, now)
        recorded = self._expiries.get(session.id)
        if session.expires_at > latest and (recorded is None or recorded[0] > latest):
            recorded = (latest, latest <= now)
            await self._audit.append(
                "session_shortened",
                session=session.id,
                owner_uid=session.uid,
                expires_at_was=session.expires_at,
                expires_at=latest,
                max_ttl=max_ttl,
            )
            if latest <= now:
                await self._audit.append(
                    "session_expired", session=session.id, uid=session.uid, reason=ENDED
                )
            self._expiries[session.id] = recorded
        if recorded is None:
            return
        # Written even if the limit was raised since it was recorded: the record says it.
        expires_at, ended = recorded
        self._store.shorten_session(session.id, expires_at=expires_at, ended=ended)
        del self._expiries[session.id]
        log.info("session_shortened", session=session.id, ended=ended)

    async def _lower(
        self, session: Session, services: Mapping[str, Service], config: AirlockConfig
    ) -> None:
        cap = budget_cap(session.services[0], services, config.permissions)
        state = self._budgets.state(session.id)
        if state is None:
            return
        limit = self._limits.get(session.id)
        if cap is not None and state.limit_nano > cap and (limit is None or limit > cap):
            limit = cap
            await self._audit.append(
                "budget_lowered",
                session=session.id,
                owner_uid=session.uid,
                service=session.services[0],
                limit_usd_was=usd(state.limit_nano),
                limit_usd=usd(limit),
                spent_usd=usd(state.spent_nano),
            )
            self._limits[session.id] = limit
        if limit is None:
            return
        # Written even if the cap was raised since it was recorded: the record says it.
        self._budgets.lower(session.id, limit)
        del self._limits[session.id]
        log.info("budget_lowered", session=session.id)
