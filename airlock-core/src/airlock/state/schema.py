"""The state database's schema, as the migrations that build it (see :mod:`.store`)."""

from __future__ import annotations

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
    # 5: lockouts in a row (one fewer for each day since the last one ended); each lasts
    # twice the one before, so guessing slows to a few codes a day however it is timed.
    """
    ALTER TABLE approval_lock ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0
        CHECK (lockouts >= 0);
    """,
)
