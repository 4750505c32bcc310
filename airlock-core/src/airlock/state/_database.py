"""The connection under :class:`~airlock.state.store.StateStore`: one SQLite file, its
pragmas, re-entrant transactions and the migrations (see :mod:`.store` for why).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from airlock.common.files import PRIVATE_FILE, ensure_private_dir
from airlock.errors import AirlockError, StateUnavailable
from airlock.state.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000


class RevocationNotWritten(sqlite3.OperationalError):
    """The database refused a revocation whose record is on disk (held by another
    process past the wait, or its disk full): this store reads the session (or the
    approval) as revoked already, and writes it at a later housekeeping round."""


def _create_private(path: Path) -> None:
    """Create *path* 0600 if missing, so no SQLite file is ever readable by others."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


class Database:
    """The shared connection: ``transaction`` and the ``_execute``/``_one``/``_all``
    helpers the tables are written with. Safe to share between threads."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        """*busy_timeout_ms*: how long a write waits for another process's to finish."""
        self.path = path
        ensure_private_dir(path.parent)
        _create_private(path)
        self._lock = threading.RLock()
        self._depth = 0
        # Counts revocations (and shortenings) made through this store, so a cache of
        # sessions (see SessionManager.authenticate) knows when to look again.
        self.revocations = 0
        self.held_revocations: dict[str, float] = {}
        """Revocations on record the database refused, by session: their time."""
        self.held_cancellations: dict[str, float] = {}
        """Cancellations of approvals not collected yet (revoke-all) on record that the
        database refused, by request: their time."""
        self._conn = sqlite3.connect(
            path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        try:
            self._migrate()
        except sqlite3.OperationalError as exc:
            self._conn.close()
            raise StateUnavailable(
                f"the state database ({path}) could not be opened for writing: {exc} "
                f"(waited {busy_timeout_ms / 1000:g} s for another process to let go of it)",
                hint="close what holds the file open (a sqlite3 shell, a backup) and start again",
            ) from None

    # -- plumbing ---------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
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

    @contextlib.contextmanager
    def _not_waiting(self) -> Iterator[None]:
        """Writes inside fail at once on another process's lock instead of waiting
        ``busy_timeout`` (the daemon's event loop runs them)."""
        with self._lock:
            waits = self._conn.execute("PRAGMA busy_timeout").fetchone()[0]
            self._conn.execute("PRAGMA busy_timeout = 0")
            try:
                yield
            finally:
                self._conn.execute(f"PRAGMA busy_timeout = {int(waits)}")

    def _write_held(
        self, held: dict[str, float], write: Callable[[str, float], object]
    ) -> list[str]:
        """Write what *held* holds (id to its time), oldest first, by *write*; the ids
        written. ``sqlite3.Error`` when the database refuses again (the rest stay held),
        at once, not after ``busy_timeout``: the daemon's event loop runs it."""
        written: list[str] = []
        if not held:
            return written
        with self._not_waiting():
            for key, at in sorted(held.items(), key=lambda item: item[1]):
                write(key, at)
                del held[key]
                written.append(key)
        return written

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
