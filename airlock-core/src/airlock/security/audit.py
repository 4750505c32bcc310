"""The tamper-evident audit log (see docs/security.md).

One event a line in ``<data>/audit/audit.jsonl``::

    {"ts":"2026-01-26T15:30:00.123Z","seq":17,"event":"operation",...,"prev":"<hex>","mac":"<hex>"}

**Chain.** ``mac = HMAC-SHA256(key, prev || canonical)`` where ``prev`` is the previous
record's mac (32 raw bytes; 64 zeros before the first record) and ``canonical`` is the
record without its mac, exactly as this module writes it: ``ts``, ``seq``, ``event``
first, then the other fields with keys sorted (nested too), then ``prev``; compact
separators, ASCII only. The written line is that text with ``,"mac":"..."`` spliced in
before the closing brace, so a verifier recovers the canonical bytes from the line
itself: any byte changed, a line deleted, moved or cut short breaks the chain.
``seq`` counts from 1 with no gaps. The key (32 random bytes, ``audit.key``, 0600) is
held by the daemon, so an agent that can append to the file cannot forge records.
Deleting records from the *end* cannot be detected by a chain alone; compare the last
``seq`` with the daemon's ``status`` for that.

**Durability, fail closed.** ``append`` returns only after the record is written and
``fdatasync``ed. If that fails the caller gets ``AuditError``, the file is truncated
back to its last good size and the chain does not advance, so the next record still
links to the last durable one. Many writers arriving together share one fsync: the
first becomes the *leader*, takes everything queued, writes it in one ``write`` and
syncs once, while the others wait (threads on an ``Event``, coroutines on a future;
the async path runs the leader in the default executor). Several processes (daemon
and CLI) can append: each batch holds an ``flock`` and re-reads the tail if another
process changed the file. A partial last line left by a crash was never acknowledged;
it is cut off on the next open and an ``audit_tail_repaired`` record says so.

**Time order.** ``ts`` comes from the injected clock but never goes backwards (a clock
stepping back is clamped to the last ``ts``), so the files are sorted by time and a
query can seek by binary search instead of reading everything.

**Rotation.** When ``audit.jsonl`` reaches ``audit.rotate_bytes`` it is renamed to
``audit-<first ts>-<first seq>.jsonl`` (``audit-20260126T153000.123Z-000000000017.jsonl``)
and a new file starts; the chain continues (its first ``prev`` is the old file's last
``mac``). Past ``audit.max_bytes`` the oldest rotated files are deleted, each verified
first and announced by an ``audit_files_dropped`` record (see ``_audit_retention``).

**Secrets never reach the log.** Every field passes :func:`scrub`: values under keys
that name secrets (password, token, secret, totp, code, claim, authorization,
api_key, ...) become ``"[redacted]"``, ``SecretStr`` values too, and any ``alk_``
session token or ``Bearer`` credential inside a string is masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airlock.common.clock import Clock, SystemClock
from airlock.common.files import PRIVATE_FILE, ensure_private_dir, fsync_dir
from airlock.errors import AuditError
from airlock.security._audit_chain import GENESIS, Mac, body_of, framed, mac_of, prev_of
from airlock.security._audit_format import (
    CURRENT_NAME,
    KEY_BYTES,
    REDACTED,
    check_event,
    encode_line,
    encode_record,
    fields_json,
    first_line_of,
    format_ts,
    load_key,
    load_or_create_key,
    log_files,
    read_tail,
    rotated_name,
    scrub,
)
from airlock.security._audit_read import VerifyProblem, VerifyResult, query, verify
from airlock.security._audit_retention import DROP_EVENT, plan_drops

if TYPE_CHECKING:
    pass

GROUP_WAIT = 0.002  # seconds a leader waits for writers already inside append()

__all__ = [
    "CURRENT_NAME",
    "GENESIS",
    "REDACTED",
    "AuditLog",
    "AuditRecord",
    "VerifyProblem",
    "VerifyResult",
    "encode_record",
    "format_ts",
    "load_key",
    "load_or_create_key",
    "query",
    "rotated_name",
    "scrub",
    "verify",
    "verify_dir",
]

# --- writer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRecord:
    """What ``append`` wrote: enough to cite the record (seq) and link to it (mac)."""

    seq: int
    ts: str
    event: str
    mac: str


@dataclass
class _Pending:
    event: str
    fields_json: str
    done: threading.Lock | None = None  # held until settled: a cheap one-shot event
    future: asyncio.Future[AuditRecord] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    record: AuditRecord | None = None
    error: str | None = None

    def settle(self, record: AuditRecord | None, error: str | None) -> None:
        self.record, self.error = record, error
        if self.done is not None:
            self.done.release()
        if self.future is not None and self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(_settle_future, self.future, record, error)


def _settle_future(
    future: asyncio.Future[AuditRecord], record: AuditRecord | None, error: str | None
) -> None:
    if future.done():
        return
    if record is not None:
        future.set_result(record)
    else:
        future.set_exception(_audit_error(error or "audit write failed"))


def _audit_error(reason: str) -> AuditError:
    return AuditError(
        f"audit record not written: {reason}",
        hint="nothing was served; check the disk and run `airlock audit verify`",
    )


@dataclass
class _Chain:
    seq: int = 0
    mac: str = GENESIS
    ts: str = ""


@dataclass
class _Current:
    """The open ``audit.jsonl`` as this process last saw it."""

    fd: int
    ident: tuple[int, int]
    size: int
    first: tuple[int, str] | None = None  # (seq, ts) of its first record
    repaired: int = 0


class AuditLog:
    """Appends records to the chain; thread-safe, group-committing, fail-closed.

    ``await log.append(event, **fields)`` from coroutines (the daemon),
    ``log.append_sync(event, **fields)`` from threads or sync code (the CLI). *key* is
    the key itself or the key file (created on first use).
    """

    def __init__(
        self,
        audit_dir: Path,
        key: bytes | Path,
        *,
        rotate_bytes: int = 64 * 1024 * 1024,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(key, Path):
            key = load_or_create_key(key)
        if len(key) != KEY_BYTES:
            raise ValueError("the audit key must be 32 bytes")
        self.audit_dir = audit_dir
        self.current_path = audit_dir / CURRENT_NAME
        self._current_name = str(self.current_path)  # str: stat on every batch, skip pathlib
        self._key = key
        self._rotate_bytes = rotate_bytes
        self._clock: Clock = clock or SystemClock()
        self._queue: list[_Pending] = []
        self._qlock = threading.Lock()
        self._arrived = threading.Condition(self._qlock)
        self._leading = False
        self._inflight = 0
        self._chain = _Chain()
        self._current: _Current | None = None
        self._lock_fd: int | None = None
        self._drop_refused: str | None = None

    def __repr__(self) -> str:
        return f"AuditLog({str(self.audit_dir)!r})"

    @property
    def last_seq(self) -> int:
        """The seq of the last record this log wrote or read (0 before the first)."""
        return self._chain.seq

    def close(self) -> None:
        with self._qlock:
            if self._current is not None:
                os.close(self._current.fd)
                self._current = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- appending --------------------------------------------------------------------

    async def append(self, event: str, **fields: Any) -> AuditRecord:
        """Write one record; returns once it is on disk, ``AuditError`` if it cannot be.

        For coroutines: waits on a future while the disk work runs in a worker thread,
        so the event loop never blocks on fsync.
        """
        self._begin()
        try:
            pending = self._prepare(event, fields)
            loop = asyncio.get_running_loop()
            pending.loop, pending.future = loop, loop.create_future()
            if self._enqueue(pending):
                loop.run_in_executor(None, self._lead)
            return await pending.future
        finally:
            self._end()

    def append_sync(self, event: str, **fields: Any) -> AuditRecord:
        """``append`` for threads and sync code (the CLI): blocks until the record is durable."""
        self._begin()
        try:
            pending = self._prepare(event, fields)
            pending.done = threading.Lock()
            pending.done.acquire()
            if self._enqueue(pending):
                self._lead()
            pending.done.acquire()
        finally:
            self._end()
        if pending.record is None:
            raise _audit_error(pending.error or "unknown failure")
        return pending.record

    async def drop_over_budget(self, max_bytes: int) -> list[str]:
        """Delete the oldest rotated files until the directory fits *max_bytes*.

        Each file is verified first and its ``audit_files_dropped`` record is durable
        before it is deleted; a file that does not verify is kept and an
        ``audit_drop_refused`` record says why (once per reason). Returns the
        names of the files deleted.
        """
        plan = await asyncio.to_thread(plan_drops, self.audit_dir, self._key, max_bytes)
        dropped: list[str] = []
        for drop in plan.drops:
            await self.append(DROP_EVENT, **drop.record_fields())
            drop.path.unlink()
            fsync_dir(self.audit_dir)
            dropped.append(drop.path.name)
        if plan.refused and plan.refused != self._drop_refused:
            self._drop_refused = plan.refused
            await self.append("audit_drop_refused", why=plan.refused, max_bytes=max_bytes)
        return dropped

    def query(self, **criteria: Any) -> list[dict[str, Any]]:
        """:func:`query` on this log's directory."""
        return query(self.audit_dir, **criteria)

    def _prepare(self, event: str, fields: Mapping[str, Any]) -> _Pending:
        # Validation and JSON happen in the caller, so one bad event cannot fail a batch.
        check_event(event)
        return _Pending(event, fields_json(fields))

    def _begin(self) -> None:
        with self._qlock:
            self._inflight += 1

    def _end(self) -> None:
        with self._qlock:
            self._inflight -= 1
            self._arrived.notify()

    def _enqueue(self, pending: _Pending) -> bool:
        """Queue *pending*; True if the caller must lead (nobody is writing now)."""
        with self._qlock:
            self._queue.append(pending)
            self._arrived.notify()
            if self._leading:
                return False
            self._leading = True
            return True

    def _lead(self) -> None:
        """Commit batches until the queue is empty, then give up the lead."""
        batch: list[_Pending] = []
        try:
            while True:
                with self._qlock:
                    self._gather()
                    if not self._queue:
                        self._leading = False
                        return
                    batch, self._queue = self._queue, []
                try:
                    records = self._commit(batch)
                except AuditError as exc:
                    for pending in batch:
                        pending.settle(None, _reason(exc))
                else:
                    for pending, record in zip(batch, records, strict=True):
                        pending.settle(record, None)
                batch = []
        except BaseException:
            with self._qlock:
                rest, self._queue, self._leading = self._queue, [], False
            for pending in batch + rest:
                if pending.record is None and pending.error is None:
                    pending.settle(None, "the writer was interrupted")
            raise

    def _gather(self) -> None:
        """Give writers already on their way a moment to join the batch (lock held).

        Without this, a lone early writer takes a batch of one and everybody else waits
        a whole fsync for the next. Only writers inside ``append`` count, so a single
        writer never waits, and the wait is capped at ``GROUP_WAIT``.
        """
        deadline: float | None = None
        while self._queue and len(self._queue) < self._inflight:
            now = time.monotonic()
            deadline = deadline or now + GROUP_WAIT
            if now >= deadline:
                return
            self._arrived.wait(deadline - now)

    # -- one batch ----------------------------------------------------------------------

    def _commit(self, batch: list[_Pending]) -> list[AuditRecord]:
        try:
            with self._file_lock():
                current = self._sync_with_disk()
                return self._write_batch(current, batch)
        except OSError as exc:
            raise AuditError(exc.strerror or str(exc)) from None

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if self._lock_fd is None:
            ensure_private_dir(self.audit_dir)
            self._lock_fd = os.open(
                self.audit_dir / ".audit.lock",
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                PRIVATE_FILE,
            )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _sync_with_disk(self) -> _Current:
        """The open current file, reopened and re-read if anyone else changed it."""
        current = self._current
        try:
            st = os.stat(self._current_name, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if (
            current is not None
            and st is not None
            and (st.st_dev, st.st_ino) == current.ident
            and st.st_size == current.size
        ):
            return current
        if current is not None:
            os.close(current.fd)
            self._current = None
        # Read-write, not write-only: the tail is read back through this descriptor.
        fd = os.open(
            self.current_path,
            os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
            PRIVATE_FILE,
        )
        try:
            os.fchmod(fd, PRIVATE_FILE)
            info = os.fstat(fd)
            if st is None:
                fsync_dir(self.audit_dir)
            last, good = read_tail(fd)
            repaired = info.st_size - good
            if repaired:
                os.ftruncate(fd, good)
                os.fsync(fd)
            current = _Current(fd, (info.st_dev, info.st_ino), good, repaired=repaired)
            if good:
                current.first = _seq_ts(first_line_of(fd), self.current_path)
            chain = self._chain_from(last)
            if chain.seq < self._chain.seq:
                # Records this process wrote are gone: someone cut the log. Continuing
                # would chain new records onto the cut and hide it; refuse instead.
                raise AuditError(
                    f"{self.current_path}: records after seq {chain.seq} are gone "
                    f"(this daemon wrote up to {self._chain.seq})",
                    hint="the audit log was cut; run `airlock audit verify` and investigate",
                )
            self._chain = chain
        except BaseException:
            os.close(fd)
            raise
        self._current = current
        return current

    def _chain_from(self, last: bytes | None) -> _Chain:
        if last is None:
            rotated = [f for f in log_files(self.audit_dir) if f.first_seq is not None]
            if not rotated:
                return _Chain()
            with open(rotated[-1].path, "rb") as handle:
                last, _ = read_tail(handle.fileno())
            if last is None:
                return _Chain()
        if not self._authentic(last):
            # Its seq and mac would be trusted blindly otherwise: a forged line with a
            # high seq after a cut would hide the cut and take over the chain.
            raise AuditError(
                "the last audit record does not verify with the daemon's key, "
                "so the chain cannot continue",
                hint="the audit log was edited; run `airlock audit verify` and investigate",
            )
        try:
            record = json.loads(last)
            return _Chain(int(record["seq"]), str(record["mac"]), str(record["ts"]))
        except (ValueError, KeyError, TypeError):
            raise AuditError(
                "the last audit record is unreadable, so the chain cannot continue"
            ) from None

    def _authentic(self, line: bytes) -> bool:
        """Whether *line* is a record made with our key (its mac over its prev and body)."""
        if not framed(line):
            return False
        try:
            prev = bytes.fromhex(prev_of(line).decode("ascii"))
        except ValueError:
            return False
        expected = Mac(self._key).of(prev, body_of(line)).hex().encode("ascii")
        return hmac.compare_digest(expected, mac_of(line))

    def _write_batch(self, current: _Current, batch: list[_Pending]) -> list[AuditRecord]:
        chain = _Chain(self._chain.seq, self._chain.mac, self._chain.ts)
        ts = max(format_ts(self._clock.now()), chain.ts)
        entries = [(p.event, p.fields_json) for p in batch]
        if current.repaired:
            entries.insert(0, ("audit_tail_repaired", f',"dropped_bytes":{current.repaired}'))
        lines: list[bytes] = []
        records: list[AuditRecord] = []
        for event, extra in entries:
            chain.seq += 1
            line, chain.mac = encode_line(self._key, chain.seq, ts, event, extra, chain.mac)
            lines.append(line)
            records.append(AuditRecord(chain.seq, ts, event, chain.mac))
        chain.ts = ts
        data = b"".join(lines)
        try:
            _write_all(current.fd, data)
            os.fdatasync(current.fd)
        except OSError:
            self._roll_back(current)
            raise
        if current.first is None:
            current.first = (records[0].seq, ts)
        current.size += len(data)
        current.repaired = 0
        self._chain = chain
        if current.size >= self._rotate_bytes:
            with contextlib.suppress(OSError):  # records are safe; retry on the next batch
                self._rotate(current)
        return records[len(entries) - len(batch) :]

    def _roll_back(self, current: _Current) -> None:
        """Cut a failed batch off the file; if even that fails, reopen next time."""
        try:
            os.ftruncate(current.fd, current.size)
            os.fsync(current.fd)
        except OSError:
            os.close(current.fd)
            self._current = None

    def _rotate(self, current: _Current) -> None:
        first_seq, first_ts = current.first or (self._chain.seq, self._chain.ts)
        target = self.audit_dir / rotated_name(first_ts, first_seq)
        if target.exists():
            return
        os.rename(self.current_path, target)
        fsync_dir(self.audit_dir)
        os.close(current.fd)
        self._current = None


def _reason(exc: AuditError) -> str:
    return exc.message


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _seq_ts(line: bytes, path: Path) -> tuple[int, str]:
    try:
        record = json.loads(line)
        return int(record["seq"]), str(record["ts"])
    except (ValueError, KeyError, TypeError):
        raise AuditError(f"{path}: the first record is unreadable") from None


def verify_dir(audit_dir: Path, key_file: Path) -> VerifyResult:
    """``airlock audit verify`` without the CLI: load the key, verify the directory.

    No key and no log is a fresh install (nothing to check); log files without their key
    cannot be checked and raise ``AuditError``.
    """
    if not key_file.exists() and not log_files(audit_dir):
        return VerifyResult(True, 0)
    return verify(audit_dir, load_key(key_file))


class Auditor(Protocol):
    """Where the daemon's parts record what happened (``AuditLog``); raises to fail closed."""

    async def append(self, event: str, **fields: Any) -> object: ...
