"""The daemon's state in SQLite: requests, sessions, TOTP replay and lockout state.

A thin typed layer: dataclasses in, dataclasses out, no business rules. The few
compare-and-set methods (``advance_last_step``, ``set_request_status``,
``consume_write_approval``) exist because the rules built on them must hold when two
approvals race, and only the database can make "check then write" atomic.

Durability matters more than speed here: a replayed TOTP code must stay refused after a
power cut, so the database runs in WAL mode with ``synchronous=FULL``. The file is
created 0600 before SQLite opens it (SQLite gives its ``-wal`` and ``-shm`` files the
same mode). One connection is shared by the daemon's threads behind a re-entrant lock;
``busy_timeout`` covers a second process (the CLI) touching the same file.
"""

from __future__ import annotations

from airlock.models import RequestStatus
from airlock.state._database import BUSY_TIMEOUT_MS, RevocationNotWritten
from airlock.state._requests import RequestTables
from airlock.state._sessions import SessionTables
from airlock.state.records import AccessRequest, Session, WriteApproval
from airlock.state.schema import MIGRATIONS

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "AccessRequest",
    "RequestStatus",
    "RevocationNotWritten",
    "Session",
    "StateStore",
    "WriteApproval",
]

_FINISHED_REQUESTS = """decided_at IS NOT NULL AND decided_at <= ?
    AND (status IN (?, ?, ?) OR session_id IS NOT NULL)"""
_ENDED_SESSIONS = """(revoked_at IS NOT NULL AND revoked_at <= ?)
    OR (expiry_noted = 1 AND expires_at <= ?)"""


def _finished_requests(before: float) -> tuple[float, str, str, str]:
    return (before, RequestStatus.DENIED, RequestStatus.EXPIRED, RequestStatus.REVOKED)


MAX_LOCKOUTS = 64
"""Lockouts in a row counted at most (far past the doubling's ceiling): a count written
by hand into the database past it, or as text, is read as this, not as an error that
would undo the code check's record of a failure."""


class StateStore(RequestTables, SessionTables):
    """Typed access to ``state.db``. Safe to share between threads.

    The tables are written in :mod:`._requests` (requests, write approvals) and
    :mod:`._sessions` (sessions, budgets); the connection in :mod:`._database`. What
    spans them, and the small single-row tables, are here.
    """

    def count_finished(self, before: float) -> tuple[int, int]:
        """How many requests and sessions :meth:`purge_finished` would delete."""
        requests = self._one(
            "SELECT COUNT(*) AS n FROM requests WHERE " + _FINISHED_REQUESTS,  # noqa: S608 - fixed
            _finished_requests(before),
        )
        sessions = self._one(
            "SELECT COUNT(*) AS n FROM sessions WHERE " + _ENDED_SESSIONS,  # noqa: S608 - fixed
            (before, before),
        )
        return (int(requests["n"]) if requests else 0, int(sessions["n"]) if sessions else 0)

    def purge_finished(self, before: float) -> tuple[int, int]:
        """Delete requests and sessions that ended at or before *before*.

        Finished requests are denied, expired, revoked or collected ones; ended sessions
        are revoked ones and expired ones whose expiry was already reported. Returns how
        many requests and sessions were deleted. Their story stays in the audit log.
        """
        with self.transaction():
            requests = self._conn.execute(
                "DELETE FROM requests WHERE " + _FINISHED_REQUESTS,  # noqa: S608 - fixed
                _finished_requests(before),
            ).rowcount
            sessions = self._conn.execute(
                "DELETE FROM sessions WHERE " + _ENDED_SESSIONS,  # noqa: S608 - fixed
                (before, before),
            ).rowcount
            self._conn.execute(
                "DELETE FROM write_approvals WHERE request_id NOT IN (SELECT id FROM requests)"
            )
            for table in ("budgets", "budget_reservations"):
                self._conn.execute(
                    f"DELETE FROM {table} WHERE session_id NOT IN (SELECT id FROM sessions)"  # noqa: S608 - fixed names
                )
        return requests, sessions

    # -- TOTP replay state ----------------------------------------------------------

    def last_step(self) -> int | None:
        """The time step of the last accepted TOTP code (None before the first)."""
        row = self._one("SELECT last_step FROM totp_state WHERE id = 1")
        step = int(row["last_step"]) if row else -1
        return None if step < 0 else step

    def advance_last_step(self, step: int) -> bool:
        """Record *step* as accepted if it is newer than the last one; False otherwise."""
        cursor = self._execute(
            "UPDATE totp_state SET last_step = ? WHERE id = 1 AND last_step < ?", (step, step)
        )
        return cursor.rowcount == 1

    # -- failures and lockout -------------------------------------------------------

    def add_failure(self, at: float) -> None:
        self._execute("INSERT INTO approval_failures (at) VALUES (?)", (at,))

    def count_failures_since(self, since: float) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM approval_failures WHERE at > ?", (since,))
        return int(row["n"]) if row else 0

    def clear_failures(self, *, before: float | None = None) -> None:
        """Forget failures (all of them, or those at or before *before*)."""
        if before is None:
            self._execute("DELETE FROM approval_failures")
        else:
            self._execute("DELETE FROM approval_failures WHERE at <= ?", (before,))

    def locked_until(self) -> float | None:
        row = self._one("SELECT locked_until FROM approval_lock WHERE id = 1")
        return float(row["locked_until"]) if row and row["locked_until"] is not None else None

    def last_lockout(self) -> tuple[float | None, int]:
        """When the last lockout ends or ended (None: none yet) and how many lockouts in a
        row it made (see :meth:`lock`)."""
        row = self._one("SELECT locked_until, lockouts FROM approval_lock WHERE id = 1")
        if row is None:
            return None, 0
        until = row["locked_until"]
        try:
            count = min(max(int(row["lockouts"]), 0), MAX_LOCKOUTS)
        except (TypeError, ValueError):
            count = MAX_LOCKOUTS  # written by hand as text: as many as it can mean
        return (float(until) if until is not None else None), count

    def lock(self, until: float, in_a_row: int) -> None:
        """Lock approvals until *until*, the *in_a_row*-th lockout in a row (the row is
        made again if it is missing: approvals lock whatever happened to it)."""
        self._execute(
            "INSERT INTO approval_lock (id, locked_until, lockouts) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET locked_until = excluded.locked_until, "
            "lockouts = excluded.lockouts",
            (until, in_a_row),
        )

    # -- audit anchor -----------------------------------------------------------------

    def audit_anchor(self) -> int:
        """The highest audit seq the daemon recorded as written (0 when none)."""
        row = self._one("SELECT seq FROM audit_anchor WHERE id = 1")
        return int(row["seq"]) if row else 0

    def raise_audit_anchor(self, seq: int) -> None:
        """Record that the audit log reaches *seq*; the anchor never goes down."""
        self._execute("UPDATE audit_anchor SET seq = MAX(seq, ?) WHERE id = 1", (seq,))
