"""Revocations (and lowered limits) the audit log records and the state database does not
show, applied at start.

A revoke (one session, revoke-all from the terminal, a phone or the dashboard, a
dashboard log-out) writes its ``session_revoked`` or ``approval_revoked`` record, fsynced,
then changes the state database. A daemon killed between the two (SIGKILL, power loss),
or a database that refused the write (a 503 and a ``state_write_failed`` record; this
daemon refuses the session or the approval already and writes it at its next
housekeeping round:
:func:`write_held_revocations`), leaves a log that says revoked and a database that does
not. The start, before the socket
opens, applies each: audited first as ``session_revoked_at_start`` or
``approval_revoked_at_start`` (``revoked_seq``: the record it applies), then written, as
the budgets of calls a stop cut off are (:mod:`airlock.daemon.unrecorded_holds`). A
start killed between those two finds the first record again next time. So are a
session's expiry brought forward and a budget's limit lowered by a reload with lower limits
(``session_shortened``, ``budget_lowered``: :mod:`airlock.daemon.lowered_limits`), as
``session_shortened_at_start`` (``shortened_seq``) and ``budget_lowered_at_start``
(``lowered_seq``): the config may have been raised again before the start, the log still
says what was taken back.

Only what can still be used is looked up: sessions active now and approved requests not
collected (with none, nothing is read), and only the records since the earliest of them
began (a session's life counts from its approval, a request's from its asking; its
revocation is recorded after that, and ``ts`` never goes back) less :data:`CLOCK_SLACK`.
A log that cannot be read stops the start: the socket never opens on sessions it may
have revoked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from typing import Any

from airlock.common.clock import Clock
from airlock.common.logs import get_logger
from airlock.framework.spending import nano_usd, usd
from airlock.models import RequestStatus
from airlock.security.audit import AuditLog, query
from airlock.state.store import Session, StateStore

__all__ = ["CLOCK_SLACK", "apply_recorded_revocations", "write_held_revocations"]

log = get_logger("airlock.daemon")

CLOCK_SLACK = 60.0
"""Seconds read before the earliest live request began: a clock stepped back between a
request's time in the database and its record's ``ts`` (clamped, never going back)."""

REASON = "its record was on disk, the state database did not show it"
SESSION_EVENTS = ("session_revoked", "session_shortened", "budget_lowered")


async def apply_recorded_revocations(store: StateStore, audit: AuditLog, clock: Clock) -> None:
    now = clock.now()
    sessions = {s.id: s for s in store.list_sessions(active_at=now)}
    requests = {r.id: r for r in store.uncollected_requests()}
    if not sessions and not requests:
        return
    since = min(
        [r.created_at for r in requests.values()] + [s.created_at for s in sessions.values()]
    )

    def unapplied(record: dict[str, Any]) -> bool:
        event = record.get("event")
        return (event in SESSION_EVENTS and record.get("session") in sessions) or (
            event == "approval_revoked" and record.get("request") in requests
        )

    # Read errors (OSError) end the start; lines that do not parse are verify's to name.
    # Each of these records names the owner's uid: the cheap filter before parsing.
    records = await asyncio.to_thread(
        query,
        audit.audit_dir,
        since=since - CLOCK_SLACK,
        match=unapplied,
        contains=(b'owner_uid"',),
    )
    for record in records:
        if record["event"] == "session_shortened":
            if (session := sessions.get(record["session"])) is not None:
                sessions[session.id] = await _shorten(store, audit, session, record)
            continue
        if record["event"] == "budget_lowered":
            if record["session"] in sessions:
                await _lower(store, audit, sessions[record["session"]], record)
            continue
        if (session := sessions.pop(str(record.get("session")), None)) is not None:
            await audit.append(
                "session_revoked_at_start",
                session=session.id,
                owner_uid=session.uid,
                revoked_seq=record["seq"],
                reason=REASON,
            )
            store.revoke_session(session.id, at=now)
            log.warning("session_revoked_at_start", session=session.id)
        elif (request := requests.pop(str(record.get("request")), None)) is not None:
            await audit.append(
                "approval_revoked_at_start",
                request=request.id,
                owner_uid=request.requester_uid,
                revoked_seq=record["seq"],
                reason=REASON,
            )
            store.set_request_status(
                request.id, RequestStatus.REVOKED, decided_at=now, only_if=RequestStatus.APPROVED
            )
            log.warning("approval_revoked_at_start", request=request.id)


def write_held_revocations(store: StateStore) -> None:
    """At each housekeeping round: write the revocations (and cancelled approvals) the
    database refused while this daemon runs (refused by it already, their records on disk
    and not written again); refused again, they stay held for the next round."""
    try:
        for session_id in store.write_held_revocations():
            log.info("held_revocation_written", session=session_id)
        for request_id in store.write_held_cancellations():
            log.info("held_cancellation_written", request=request_id)
    except sqlite3.Error as exc:
        held = len(store.held_revocations) + len(store.held_cancellations)
        log.warning("revocations_not_written_yet", held=held, error=type(exc).__name__)


async def _shorten(
    store: StateStore, audit: AuditLog, session: Session, record: dict[str, Any]
) -> Session:
    expires_at = float(record["expires_at"])
    if expires_at >= session.expires_at:
        return session
    await audit.append(
        "session_shortened_at_start",
        session=session.id,
        owner_uid=session.uid,
        shortened_seq=record["seq"],
        expires_at=expires_at,
        reason=REASON,
    )
    store.shorten_session(session.id, expires_at=expires_at, ended=False)
    log.warning("session_shortened_at_start", session=session.id)
    return dataclasses.replace(session, expires_at=expires_at)


async def _lower(
    store: StateStore, audit: AuditLog, session: Session, record: dict[str, Any]
) -> None:
    limit = nano_usd(record["limit_usd"])
    budget = store.get_budget(session.id)
    if budget is None or limit >= budget[0]:
        return
    await audit.append(
        "budget_lowered_at_start",
        session=session.id,
        owner_uid=session.uid,
        lowered_seq=record["seq"],
        limit_usd=usd(limit),
        reason=REASON,
    )
    store.lower_budget(session.id, limit)
    log.warning("budget_lowered_at_start", session=session.id)
