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

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airlock.common.files import PRIVATE_FILE, ensure_private_dir
from airlock.errors import AirlockError
from airlock.models import Access, RequestStatus

BUSY_TIMEOUT_MS = 10_000

# Append only: each entry moves the schema from version i to i + 1. Never edit a
# released entry; add a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE requests (
        id              TEXT PRIMARY KEY,
        code            TEXT NOT NULL UNIQUE,
        claim_hash      TEXT NOT NULL,
        fingerprint     TEXT NOT NULL,
        services        TEXT NOT NULL,
        access          TEXT NOT NULL,
        reason          TEXT NOT NULL,
        ttl             INTEGER NOT NULL,
        operation       TEXT,
        requester_uid   INTEGER NOT NULL,
        requester_pid   INTEGER,
        agent           TEXT,
        sensitive       INTEGER NOT NULL DEFAULT 0,
        status          TEXT NOT NULL,
        created_at      REAL NOT NULL,
        expires_at      REAL NOT NULL,
        decided_at      REAL,
        session_id      TEXT
    );
    CREATE INDEX requests_status ON requests (status, expires_at);

    CREATE TABLE sessions (
        id              TEXT PRIMARY KEY,
        token_hash      TEXT NOT NULL UNIQUE,
        services        TEXT NOT NULL,
        access          TEXT NOT NULL,
        uid             INTEGER NOT NULL,
        created_at      REAL NOT NULL,
        expires_at      REAL NOT NULL,
        revoked_at      REAL,
        request_id      TEXT,
        use_count       INTEGER NOT NULL DEFAULT 0,
        sensitive       INTEGER NOT NULL DEFAULT 0,
        expiry_noted    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_uid ON sessions (uid, expires_at);
    CREATE INDEX sessions_expiry ON sessions (expiry_noted, expires_at);

    CREATE TABLE totp_state (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        last_step       INTEGER NOT NULL
    );
    INSERT INTO totp_state (id, last_step) VALUES (1, -1);

    CREATE TABLE approval_failures (
        at              REAL NOT NULL
    );
    CREATE INDEX approval_failures_at ON approval_failures (at);

    CREATE TABLE approval_lock (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        locked_until    REAL
    );
    INSERT INTO approval_lock (id, locked_until) VALUES (1, NULL);

    CREATE TABLE write_approvals (
        request_id      TEXT PRIMARY KEY,
        operation_hash  TEXT NOT NULL,
        session_id      TEXT,
        created_at      REAL NOT NULL,
        expires_at      REAL NOT NULL,
        used_at         REAL
    );
    CREATE INDEX write_approvals_hash ON write_approvals (operation_hash, used_at);
    """,
    # 2: how far the daemon's audit log is known to reach, so a restart can tell when
    # records were cut off its end while it was down.
    """
    CREATE TABLE audit_anchor (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        seq             INTEGER NOT NULL
    );
    INSERT INTO audit_anchor (id, seq) VALUES (1, 0);
    """,
    # 3: spend access. A request carries the budget the person is asked to approve; a
    # session's budget counts whole nano-dollars spent and reserved by calls in flight.
    """
    ALTER TABLE requests ADD COLUMN budget_nano INTEGER;

    CREATE TABLE budgets (
        session_id      TEXT PRIMARY KEY,
        limit_nano      INTEGER NOT NULL,
        spent_nano      INTEGER NOT NULL DEFAULT 0,
        reserved_nano   INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE budget_reservations (
        id              TEXT PRIMARY KEY,
        session_id      TEXT NOT NULL,
        amount_nano     INTEGER NOT NULL,
        created_at      REAL NOT NULL
    );
    """,
    # 4: a session made from a write approval runs that one call only (its hash).
    """
    ALTER TABLE sessions ADD COLUMN operation_hash TEXT;
    CREATE INDEX requests_uid ON requests (requester_uid, status);
    """,
)


@dataclass(frozen=True)
class AccessRequest:
    """An agent's request for access, as stored (the claim only as its SHA-256)."""

    id: str
    code: str
    claim_hash: str
    fingerprint: str
    services: tuple[str, ...]
    access: Access
    reason: str
    ttl: int
    operation: dict[str, Any] | None
    requester_uid: int
    requester_pid: int | None
    status: RequestStatus
    created_at: float
    expires_at: float
    agent: str | None = None
    sensitive: bool = False
    decided_at: float | None = None
    session_id: str | None = None
    budget_nano: int | None = None
    """For access ``spend``: the amount asked for, in nano-dollars."""


@dataclass(frozen=True)
class Session:
    """An issued session; the token itself is never stored, only its SHA-256."""

    id: str
    token_hash: str
    services: tuple[str, ...]
    access: Access
    uid: int
    created_at: float
    expires_at: float
    request_id: str | None = None
    revoked_at: float | None = None
    use_count: int = 0
    sensitive: bool = False
    operation_hash: str | None = None
    """Set for a session made from a write approval: the one call it may run."""

    def __repr__(self) -> str:
        # The hash is not the token, but it is a lookup key: keep it out of logs.
        return (
            f"Session(id={self.id!r}, services={self.services!r}, access={self.access!r}, "
            f"uid={self.uid}, expires_at={self.expires_at}, revoked={self.revoked_at is not None})"
        )

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class WriteApproval:
    """The person's approval of one exact write operation, usable once."""

    request_id: str
    operation_hash: str
    created_at: float
    expires_at: float
    session_id: str | None = None
    used_at: float | None = None


def _request_from_row(row: sqlite3.Row) -> AccessRequest:
    return AccessRequest(
        id=row["id"],
        code=row["code"],
        claim_hash=row["claim_hash"],
        fingerprint=row["fingerprint"],
        services=tuple(json.loads(row["services"])),
        access=Access(row["access"]),
        reason=row["reason"],
        ttl=row["ttl"],
        operation=json.loads(row["operation"]) if row["operation"] is not None else None,
        requester_uid=row["requester_uid"],
        requester_pid=row["requester_pid"],
        status=RequestStatus(row["status"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        agent=row["agent"],
        sensitive=bool(row["sensitive"]),
        decided_at=row["decided_at"],
        session_id=row["session_id"],
        budget_nano=row["budget_nano"],
    )


def _session_from_row(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        token_hash=row["token_hash"],
        services=tuple(json.loads(row["services"])),
        access=Access(row["access"]),
        uid=row["uid"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        request_id=row["request_id"],
        revoked_at=row["revoked_at"],
        use_count=row["use_count"],
        sensitive=bool(row["sensitive"]),
        operation_hash=row["operation_hash"],
    )


def _approval_from_row(row: sqlite3.Row) -> WriteApproval:
    return WriteApproval(
        request_id=row["request_id"],
        operation_hash=row["operation_hash"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        session_id=row["session_id"],
        used_at=row["used_at"],
    )


def _create_private(path: Path) -> None:
    """Create *path* 0600 if missing, so no SQLite file is ever readable by others."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


class StateStore:
    """Typed access to ``state.db``. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ensure_private_dir(path.parent)
        _create_private(path)
        self._lock = threading.RLock()
        self._depth = 0
        # Counts revocations made through this store, so a cache of sessions (see
        # SessionManager.authenticate) knows when to look again.
        self.revocations = 0
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._migrate()

    # -- plumbing ---------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the enclosed calls as one atomic unit (re-entrant; writes lock at BEGIN).

        ``BEGIN IMMEDIATE`` takes the write lock up front, so a read-then-write inside
        cannot interleave with another process's write.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.transaction():
            return self._conn.execute(sql, params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def schema_version(self) -> int:
        row = self._one("SELECT version FROM schema_version")
        return int(row["version"]) if row else 0

    def _migrate(self) -> None:
        with self.transaction():
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            row = self._conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            else:
                version = int(row["version"])
            if version > len(MIGRATIONS):
                raise AirlockError(
                    f"{self.path} was written by a newer Airlock (schema {version})",
                    hint="upgrade airlock-core",
                )
            for index in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute("UPDATE schema_version SET version = ?", (index + 1,))

    # -- access requests ----------------------------------------------------------

    def insert_request(self, request: AccessRequest) -> None:
        self._execute(
            """INSERT INTO requests (id, code, claim_hash, fingerprint, services, access,
               reason, ttl, operation, requester_uid, requester_pid, agent, sensitive, status,
               created_at, expires_at, decided_at, session_id, budget_nano)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                request.id,
                request.code,
                request.claim_hash,
                request.fingerprint,
                json.dumps(list(request.services)),
                request.access,
                request.reason,
                request.ttl,
                json.dumps(request.operation) if request.operation is not None else None,
                request.requester_uid,
                request.requester_pid,
                request.agent,
                int(request.sensitive),
                request.status,
                request.created_at,
                request.expires_at,
                request.decided_at,
                request.session_id,
                request.budget_nano,
            ),
        )

    def get_request(self, request_id: str) -> AccessRequest | None:
        row = self._one("SELECT * FROM requests WHERE id = ?", (request_id,))
        return _request_from_row(row) if row else None

    def get_request_by_code(self, code: str) -> AccessRequest | None:
        row = self._one("SELECT * FROM requests WHERE code = ?", (code,))
        return _request_from_row(row) if row else None

    def list_requests(self, status: RequestStatus | None = None) -> list[AccessRequest]:
        if status is None:
            rows = self._all("SELECT * FROM requests ORDER BY created_at, rowid")
        else:
            rows = self._all(
                "SELECT * FROM requests WHERE status = ? ORDER BY created_at, rowid", (status,)
            )
        return [_request_from_row(row) for row in rows]

    def set_request_status(
        self,
        request_id: str,
        status: RequestStatus,
        *,
        decided_at: float,
        session_id: str | None = None,
        only_if: RequestStatus = RequestStatus.PENDING,
    ) -> bool:
        """Move a request from *only_if* to *status*; False if it was not in *only_if*."""
        cursor = self._execute(
            """UPDATE requests SET status = ?, decided_at = ?, session_id = COALESCE(?, session_id)
               WHERE id = ? AND status = ?""",
            (status, decided_at, session_id, request_id, only_if),
        )
        return cursor.rowcount == 1

    def replace_claim(self, request_id: str, claim_hash: str) -> bool:
        """Give a pending request a new claim (the old one stops working); False if it is
        no longer pending."""
        cursor = self._execute(
            "UPDATE requests SET claim_hash = ? WHERE id = ? AND status = ?",
            (claim_hash, request_id, RequestStatus.PENDING),
        )
        return cursor.rowcount == 1

    def count_pending(self, uid: int | None = None) -> int:
        """Requests still waiting for the person (of one uid, or of all)."""
        sql = "SELECT COUNT(*) AS n FROM requests WHERE status = ?"
        params: list[Any] = [RequestStatus.PENDING]
        if uid is not None:
            sql += " AND requester_uid = ?"
            params.append(uid)
        row = self._one(sql, params)
        return int(row["n"]) if row else 0

    def uncollected_requests(self) -> list[AccessRequest]:
        """Approved requests whose session nobody has collected yet."""
        rows = self._all(
            "SELECT * FROM requests WHERE status = ? AND session_id IS NULL "
            "ORDER BY decided_at, rowid",
            (RequestStatus.APPROVED,),
        )
        return [_request_from_row(row) for row in rows]

    def used_codes(self) -> set[str]:
        """Every request code still held by a stored request (codes are unique)."""
        return {row["code"] for row in self._all("SELECT code FROM requests")}

    def purge_finished(self, before: float) -> tuple[int, int]:
        """Delete requests and sessions that ended at or before *before*.

        Finished requests are denied, expired, revoked or collected ones; ended sessions
        are revoked ones and expired ones whose expiry was already reported. Returns how
        many requests and sessions were deleted. Their story stays in the audit log.
        """
        with self.transaction():
            requests = self._conn.execute(
                """DELETE FROM requests WHERE decided_at IS NOT NULL AND decided_at <= ?
                   AND (status IN (?, ?, ?) OR session_id IS NOT NULL)""",
                (
                    before,
                    RequestStatus.DENIED,
                    RequestStatus.EXPIRED,
                    RequestStatus.REVOKED,
                ),
            ).rowcount
            sessions = self._conn.execute(
                """DELETE FROM sessions WHERE (revoked_at IS NOT NULL AND revoked_at <= ?)
                   OR (expiry_noted = 1 AND expires_at <= ?)""",
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

    def pending_requests_due(self, now: float) -> list[AccessRequest]:
        """Pending requests whose ``expires_at`` has passed."""
        rows = self._all(
            "SELECT * FROM requests WHERE status = ? AND expires_at <= ? ORDER BY expires_at",
            (RequestStatus.PENDING, now),
        )
        return [_request_from_row(row) for row in rows]

    # -- sessions -------------------------------------------------------------------

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
        return _session_from_row(row) if row else None

    def find_session_by_token_hash(self, token_hash: str) -> Session | None:
        row = self._one("SELECT * FROM sessions WHERE token_hash = ?", (token_hash,))
        return _session_from_row(row) if row else None

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
        return [_session_from_row(row) for row in rows]

    def revoke_session(self, session_id: str, *, at: float) -> bool:
        """Mark a session revoked; False if unknown or already revoked."""
        cursor = self._execute(
            "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (at, session_id),
        )
        self.revocations += 1
        return cursor.rowcount == 1

    def increment_use(self, session_id: str) -> int:
        """Add one to the session's use count and return the new count (0 if unknown)."""
        with self.transaction():
            self._conn.execute(
                "UPDATE sessions SET use_count = use_count + 1 WHERE id = ?", (session_id,)
            )
            row = self._conn.execute(
                "SELECT use_count FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        return int(row["use_count"]) if row else 0

    def take_newly_expired(self, now: float) -> list[Session]:
        """Sessions that expired by *now* and were not reported yet; marks them reported."""
        with self.transaction():
            rows = self._conn.execute(
                """SELECT * FROM sessions WHERE expiry_noted = 0 AND revoked_at IS NULL
                   AND expires_at <= ? ORDER BY expires_at""",
                (now,),
            ).fetchall()
            self._conn.executemany(
                "UPDATE sessions SET expiry_noted = 1 WHERE id = ?", [(r["id"],) for r in rows]
            )
        return [_session_from_row(row) for row in rows]

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

    def set_locked_until(self, until: float | None) -> None:
        self._execute("UPDATE approval_lock SET locked_until = ? WHERE id = 1", (until,))

    # -- audit anchor -----------------------------------------------------------------

    def audit_anchor(self) -> int:
        """The highest audit seq the daemon recorded as written (0 when none)."""
        row = self._one("SELECT seq FROM audit_anchor WHERE id = 1")
        return int(row["seq"]) if row else 0

    def raise_audit_anchor(self, seq: int) -> None:
        """Record that the audit log reaches *seq*; the anchor never goes down."""
        self._execute("UPDATE audit_anchor SET seq = MAX(seq, ?) WHERE id = 1", (seq,))

    # -- write approvals ------------------------------------------------------------

    def insert_write_approval(self, approval: WriteApproval) -> None:
        self._execute(
            """INSERT INTO write_approvals (request_id, operation_hash, session_id, created_at,
               expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)""",
            (
                approval.request_id,
                approval.operation_hash,
                approval.session_id,
                approval.created_at,
                approval.expires_at,
                approval.used_at,
            ),
        )

    def get_write_approval(self, request_id: str) -> WriteApproval | None:
        row = self._one("SELECT * FROM write_approvals WHERE request_id = ?", (request_id,))
        return _approval_from_row(row) if row else None

    def consume_write_approval(
        self, operation_hash: str, *, session_id: str | None, now: float
    ) -> WriteApproval | None:
        """Use one unused, unexpired approval of *operation_hash* for *session_id*.

        Returns the approval now marked used, or None when there is none: each approval
        lets exactly one operation through, even when two calls race.
        """
        with self.transaction():
            row = self._conn.execute(
                """SELECT * FROM write_approvals WHERE operation_hash = ? AND used_at IS NULL
                   AND expires_at > ? AND session_id IS ? ORDER BY created_at, rowid LIMIT 1""",
                (operation_hash, now, session_id),
            ).fetchone()
            if row is None:
                return None
            self._conn.execute(
                "UPDATE write_approvals SET used_at = ? WHERE request_id = ?",
                (now, row["request_id"]),
            )
        approval = _approval_from_row(row)
        return WriteApproval(
            request_id=approval.request_id,
            operation_hash=approval.operation_hash,
            created_at=approval.created_at,
            expires_at=approval.expires_at,
            session_id=approval.session_id,
            used_at=now,
        )

    def bind_write_approval(self, request_id: str, session_id: str) -> bool:
        """Attach the session created for *request_id* to its write approval."""
        cursor = self._execute(
            "UPDATE write_approvals SET session_id = ? WHERE request_id = ?",
            (session_id, request_id),
        )
        return cursor.rowcount == 1

    # -- budgets of spend sessions -----------------------------------------------------

    def open_budget(self, session_id: str, limit_nano: int) -> None:
        self._execute(
            "INSERT INTO budgets (session_id, limit_nano) VALUES (?, ?)", (session_id, limit_nano)
        )

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
        decided: Callable[[bool], None] | None = None,
    ) -> bool:
        """Reserve *amount_nano* if the budget left covers it; False (nothing held) if not.

        One statement checks and takes, so two calls racing for the last cents cannot both
        win, in this process or another. *decided* hears the answer as soon as it is known
        under the write lock, before the commit's fsync: a caller may start its work then
        and wait for this method's return (durable) before it lets any result out.
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
            if decided is not None:
                decided(won)
        return won

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
