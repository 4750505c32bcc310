"""The tables of sessions and of the budgets of spend sessions."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from airlock.state._database import Database, RevocationNotWritten
from airlock.state.records import Session, session_from_row


class SessionTables(Database):
    """Issued sessions (the token only as its hash) and spend sessions' budgets.

    A revocation the database refused is *held* in memory (by session, its time):
    every session this store reads back shows it revoked, so nothing of this process
    (operations, streams, collect, the dashboard) serves it a moment longer, and each
    housekeeping round tries the write again. A restart finds its record instead
    (:mod:`airlock.daemon.recorded_revocations`).
    """

    def insert_session(self, session: Session) -> None:
        self._execute(
            """INSERT INTO sessions (id, token_hash, services, access, uid, created_at,
               expires_at, revoked_at, request_id, use_count, sensitive, operation_hash)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                session.id,
                session.token_hash,
                json.dumps(list(session.services)),
                session.access,
                session.uid,
                session.created_at,
                session.expires_at,
                session.revoked_at,
                session.request_id,
                session.use_count,
                int(session.sensitive),
                session.operation_hash,
            ),
        )

    def get_session(self, session_id: str) -> Session | None:
        row = self._one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return self._read(row) if row else None

    def find_session_by_token_hash(self, token_hash: str) -> Session | None:
        row = self._one("SELECT * FROM sessions WHERE token_hash = ?", (token_hash,))
        return self._read(row) if row else None

    def _read(self, row: Any) -> Session:
        """A session as stored, revoked if a revocation of it is held."""
        session = session_from_row(row)
        at = self.held_revocations.get(session.id)
        if at is None or session.revoked_at is not None:
            return session
        return dataclasses.replace(session, revoked_at=at)

    def list_sessions(
        self, *, uid: int | None = None, active_at: float | None = None
    ) -> list[Session]:
        """Sessions, optionally of one uid and optionally only those active at a time."""
        sql = "SELECT * FROM sessions WHERE 1 = 1"
        params: list[Any] = []
        if uid is not None:
            sql += " AND uid = ?"
            params.append(uid)
        if active_at is not None:
            sql += " AND revoked_at IS NULL AND expires_at > ?"
            params.append(active_at)
        rows = self._all(sql + " ORDER BY created_at, rowid", params)
        sessions = [self._read(row) for row in rows]
        if active_at is None:
            return sessions
        return [session for session in sessions if session.revoked_at is None]

    def revoke_session(self, session_id: str, *, at: float) -> bool:
        """Mark a session revoked; False if unknown or already revoked. Called once the
        revocation's record is on disk: a write the database refuses is held (see the
        class) and raises :class:`RevocationNotWritten`."""
        try:
            cursor = self._execute(
                "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (at, session_id),
            )
        except sqlite3.Error as exc:
            self.hold_revocation(session_id, at=at)
            raise RevocationNotWritten(str(exc)) from exc
        self.held_revocations.pop(session_id, None)
        self.revocations += 1
        return cursor.rowcount == 1

    def hold_revocation(self, session_id: str, *, at: float) -> None:
        """Hold a revocation on record without writing it (the database just refused
        another): the session reads as revoked from now on."""
        self.held_revocations.setdefault(session_id, at)
        self.revocations += 1  # sessions read before it are read again

    def write_held_revocations(self) -> list[str]:
        """Write the revocations held since the database refused them, oldest first; the
        sessions written. ``sqlite3.Error`` when it refuses again (the rest stay held).
        Not waiting for another process's lock: the write runs on the daemon's event
        loop, which a wait of ``busy_timeout`` every round would stall."""
        return self._write_held(
            self.held_revocations,
            lambda session_id, at: self._execute(
                "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (at, session_id),
            ),
        )

    def shorten_session(self, session_id: str, *, expires_at: float, ended: bool) -> bool:
        """Bring an active session's expiry forward to *expires_at* (never later); *ended*:
        the session ends by it now, its expiry already recorded. False if nothing changed."""
        cursor = self._execute(
            """UPDATE sessions SET expires_at = ?, expiry_noted = MAX(expiry_noted, ?)
               WHERE id = ? AND revoked_at IS NULL AND expires_at > ?""",
            (expires_at, int(ended), session_id, expires_at),
        )
        self.revocations += 1  # sessions read before it are read again
        return cursor.rowcount == 1

    def increment_use(self, session_id: str, by: int = 1) -> int:
        """Add *by* to the session's use count and return the new count (0 if unknown)."""
        with self.transaction():
            self._conn.execute(
                "UPDATE sessions SET use_count = use_count + ? WHERE id = ?", (by, session_id)
            )
            row = self._conn.execute(
                "SELECT use_count FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        return int(row["use_count"]) if row else 0

    def newly_expired(self, now: float) -> list[Session]:
        """Sessions that expired by *now* and whose expiry was not noted yet."""
        rows = self._all(
            """SELECT * FROM sessions WHERE expiry_noted = 0 AND revoked_at IS NULL
               AND expires_at <= ? ORDER BY expires_at""",
            (now,),
        )
        held = self.held_revocations
        return [session_from_row(row) for row in rows if row["id"] not in held]

    def note_expiry(self, session_id: str) -> None:
        """Mark a session's expiry as reported (once its record is written)."""
        self._execute("UPDATE sessions SET expiry_noted = 1 WHERE id = ?", (session_id,))

    # -- budgets of spend sessions -----------------------------------------------------

    def open_budget(self, session_id: str, limit_nano: int) -> None:
        self._execute(
            "INSERT INTO budgets (session_id, limit_nano) VALUES (?, ?)", (session_id, limit_nano)
        )

    def lower_budget(self, session_id: str, limit_nano: int) -> bool:
        """Lower a budget's limit to *limit_nano* (never raise it); False if it was not higher.
        Money spent and reserved stays counted."""
        cursor = self._execute(
            "UPDATE budgets SET limit_nano = ? WHERE session_id = ? AND limit_nano > ?",
            (limit_nano, session_id, limit_nano),
        )
        return cursor.rowcount == 1

    def get_budget(self, session_id: str) -> tuple[int, int, int] | None:
        """(limit, spent, reserved) of a session's budget, in nano-dollars."""
        row = self._one("SELECT * FROM budgets WHERE session_id = ?", (session_id,))
        if row is None:
            return None
        return int(row["limit_nano"]), int(row["spent_nano"]), int(row["reserved_nano"])

    def reserve_budget(
        self,
        session_id: str,
        reservation_id: str,
        amount_nano: int,
        *,
        at: float,
    ) -> bool:
        """Reserve *amount_nano* if the budget left covers it; False (nothing held) if not.

        One statement checks and takes, so two calls racing for the last cents cannot both
        win, in this process or another.
        """
        with self.transaction():
            cursor = self._conn.execute(
                """UPDATE budgets SET reserved_nano = reserved_nano + ?
                   WHERE session_id = ? AND spent_nano + reserved_nano + ? <= limit_nano""",
                (amount_nano, session_id, amount_nano),
            )
            won = cursor.rowcount == 1
            if won:
                self._conn.execute(
                    """INSERT INTO budget_reservations (id, session_id, amount_nano, created_at)
                       VALUES (?, ?, ?, ?)""",
                    (reservation_id, session_id, amount_nano, at),
                )
        return won

    def count_spent(self, session_id: str, spent_nano: int) -> None:
        """Count *spent_nano* as spent, over the limit if need be: money a call may have
        cost without a reservation on record (its write failed or was refused)."""
        self._execute(
            "UPDATE budgets SET spent_nano = spent_nano + ? WHERE session_id = ?",
            (spent_nano, session_id),
        )

    def settle_budget(self, reservation_id: str, spent_nano: int) -> bool:
        """Release a reservation and count *spent_nano* as spent; False if already settled."""
        with self.transaction():
            row = self._conn.execute(
                "SELECT * FROM budget_reservations WHERE id = ?", (reservation_id,)
            ).fetchone()
            if row is None:
                return False
            self._conn.execute("DELETE FROM budget_reservations WHERE id = ?", (reservation_id,))
            self._conn.execute(
                """UPDATE budgets SET reserved_nano = reserved_nano - ?,
                   spent_nano = spent_nano + ? WHERE session_id = ?""",
                (row["amount_nano"], spent_nano, row["session_id"]),
            )
        return True

    def open_reservations(self) -> list[tuple[str, str, int]]:
        """(reservation id, session id, amount) of every reservation not settled yet."""
        rows = self._all("SELECT * FROM budget_reservations ORDER BY created_at, rowid")
        return [(r["id"], r["session_id"], int(r["amount_nano"])) for r in rows]
