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
syncs once, while the others wait (threads on a lock, coroutines on a future; the
async path runs the leader on the log's own writer thread, and a batch wakes each
event loop once, whatever its size). The daemon's log writes its coroutines' records
in a writer process instead (``_audit_writer``), where a batch's work does not wait
for the event loop's interpreter lock. Several processes (daemon, its writer, the CLI)
can append: each batch holds an ``flock`` and re-reads the tail if another process
changed the file. A partial last line left by a crash was never acknowledged;
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

**Where.** This module queues writers and runs the group commit; ``_audit_file`` writes
a batch to the current file (lock, tail, chain, fsync, rotation); ``_audit_format``
encodes records, ``_audit_fields`` their fields (scrubbed), ``_audit_chain`` computes
macs, ``_audit_read`` queries, ``_audit_verify`` verifies, ``_audit_retention`` plans
what the size budget drops.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airlock.common.clock import Clock, SystemClock
from airlock.common.files import fsync_dir
from airlock.errors import AuditError
from airlock.security._audit_chain import GENESIS
from airlock.security._audit_fields import REDACTED, fields_json, scrub
from airlock.security._audit_file import AuditFile, AuditRecord, audit_error
from airlock.security._audit_format import (
    CURRENT_NAME,
    KEY_BYTES,
    check_event,
    encode_record,
    format_ts,
    key_for_log,
    load_key,
    load_or_create_key,
    rotated_name,
)
from airlock.security._audit_read import query, shallow
from airlock.security._audit_retention import DROP_EVENT, plan_drops
from airlock.security._audit_verify import VerifyProblem, VerifyResult, verify, verify_dir

if TYPE_CHECKING:
    import asyncio

    from airlock.security._audit_link import WriterLink

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
    "shallow",
    "verify",
    "verify_dir",
]

# --- writer -----------------------------------------------------------------------------


@dataclass
class _Pending:
    event: str
    fields_json: str
    done: threading.Lock | None = None  # held until settled: a cheap one-shot event
    future: asyncio.Future[AuditRecord] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    record: AuditRecord | None = None
    error: str | None = None


def _settle(settled: list[tuple[_Pending, AuditRecord | None, str | None]]) -> None:
    """Tell each writer how its record went: threads at once, coroutines by one
    callback a loop (one wake-up of it for the whole batch)."""
    loops: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
    for pending, record, error in settled:
        pending.record, pending.error = record, error
        if pending.done is not None:
            pending.done.release()
        if pending.future is not None and pending.loop is not None:
            loops.setdefault(pending.loop, []).append(pending)
    for loop, waiting in loops.items():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_settle_futures, waiting)


def _settle_futures(settled: list[_Pending]) -> None:
    for pending in settled:
        future = pending.future
        if future is None or future.done():
            continue
        if pending.record is not None:
            future.set_result(pending.record)
        else:
            future.set_exception(audit_error(pending.error or "audit write failed"))


class AuditLog:
    """Appends records to the chain; thread-safe, group-committing, fail-closed.

    ``await log.append(event, **fields)`` from coroutines (the daemon), ``append_sync``
    from threads or sync code (the CLI). *key* is the key itself or the key file (made
    on first use). With *writer_process* (the daemon), coroutines' records are written
    by a writer process (``_audit_writer``)."""

    def __init__(
        self,
        audit_dir: Path,
        key: bytes | Path,
        *,
        rotate_bytes: int = 64 * 1024 * 1024,
        clock: Clock | None = None,
        writer_process: bool = False,
    ) -> None:
        if isinstance(key, Path):
            key = key_for_log(key, audit_dir)
        if len(key) != KEY_BYTES:
            raise ValueError("the audit key must be 32 bytes")
        self.audit_dir = audit_dir
        self._key = key
        self._clock = clock or SystemClock()
        self._file = AuditFile(audit_dir, key, rotate_bytes=rotate_bytes, clock=self._clock)
        self._queue: list[_Pending] = []
        self._qlock = threading.Lock()
        self._arrived = threading.Condition(self._qlock)
        self._leading = False
        self._arriving = 0
        self._drop_refused: str | None = None
        self._writer: ThreadPoolExecutor | None = None  # leads coroutines' batches
        self._process: WriterLink | None = None
        if writer_process:
            from airlock.security._audit_link import WriterLink

            now = self._clock.now
            self._process = WriterLink(
                audit_dir, key, rotate_bytes=rotate_bytes, now=lambda: format_ts(now())
            )

    def __repr__(self) -> str:
        return f"AuditLog({str(self.audit_dir)!r})"

    @property
    def current_path(self) -> Path:
        return self._file.current_path

    @property
    def last_seq(self) -> int:
        """The seq of the last record this log wrote or read (0 before the first)."""
        written = self._process.last_seq if self._process is not None else 0
        return max(self._file.last_seq, written)

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
        with self._qlock:
            self._file.close()
        if self._writer is not None:
            self._writer.shutdown(wait=False)

    async def aclose(self) -> None:
        """:meth:`close`, then wait for the writer process to end."""
        self.close()
        if self._process is not None:
            await self._process.wait_closed()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- appending --------------------------------------------------------------------

    async def append(self, event: str, **fields: Any) -> AuditRecord:
        """Write one record; returns once it is on disk, ``AuditError`` if it cannot be.

        Waits on a future while the disk work runs in a worker thread (or the writer
        process, if this log has one): the event loop never blocks on fsync."""
        if self._process is not None:
            check_event(event)
            return await self._process.append(event, fields_json(fields))
        return await self._append_here(event, fields)

    async def append_encoded(self, event: str, fields: str) -> AuditRecord:
        """:meth:`append` of fields already in ``fields_json``'s text (a record made on
        every call: see ``gateway.operation_record``)."""
        if not (fields.isascii() and fields.isprintable()):  # as fields_json writes
            raise ValueError("audit fields must be one line of ASCII JSON text")
        if self._process is not None:
            check_event(event)
            return await self._process.append(event, fields)
        return await self._append_here(event, fields)

    async def _append_here(self, event: str, fields: Mapping[str, Any] | str) -> AuditRecord:
        # No writer process: this process's writer thread.
        self._arrive()
        queued = False
        try:
            pending = self._prepare(event, fields)
            import asyncio  # here, not at the top: `airlock audit verify` needs no event loop

            loop = asyncio.get_running_loop()
            pending.loop, pending.future = loop, loop.create_future()
            queued = True
            if self._enqueue(pending):
                if self._writer is None:
                    self._writer = ThreadPoolExecutor(1, thread_name_prefix="audit")
                self._writer.submit(self._lead)
        finally:
            if not queued:
                self._gave_up()
        return await pending.future

    def append_sync(self, event: str, **fields: Any) -> AuditRecord:
        """``append`` for threads and sync code (the CLI): blocks until the record is durable."""
        self._arrive()
        queued = False
        try:
            pending = self._prepare(event, fields)
            pending.done = threading.Lock()
            pending.done.acquire()
            queued = True
            if self._enqueue(pending):
                self._lead()
        finally:
            if not queued:
                self._gave_up()
        pending.done.acquire()
        if pending.record is None:
            raise audit_error(pending.error or "unknown failure")
        return pending.record

    async def drop_over_budget(self, max_bytes: int, *, keep_for: float = 0.0) -> list[str]:
        """Delete the oldest rotated files until the directory fits *max_bytes*.

        Each file is verified first and its ``audit_files_dropped`` record is durable
        before it is deleted; a file that does not verify, or holds a record from the
        last *keep_for* seconds, is kept and an ``audit_drop_refused`` record says why
        (once per reason; :attr:`drop_refused` is the reason in force). Returns the
        names of the files deleted.
        """
        import asyncio

        keep_from = format_ts(self._clock.now() - keep_for) if keep_for > 0 else ""
        plan = await asyncio.to_thread(plan_drops, self.audit_dir, self._key, max_bytes, keep_from)
        dropped: list[str] = []
        for drop in plan.drops:
            await self.append(DROP_EVENT, **drop.record_fields())
            drop.path.unlink()
            fsync_dir(self.audit_dir)
            dropped.append(drop.path.name)
        if plan.refused and plan.refused != self._drop_refused:
            await self.append("audit_drop_refused", why=plan.refused, max_bytes=max_bytes)
        self._drop_refused = plan.refused
        return dropped

    @property
    def drop_refused(self) -> str | None:
        """Why the directory stays over its budget, if it does (the last check's reason)."""
        return self._drop_refused

    def query(self, **criteria: Any) -> list[dict[str, Any]]:
        """:func:`query` on this log's directory."""
        return query(self.audit_dir, **criteria)

    def _prepare(self, event: str, fields: Mapping[str, Any] | str) -> _Pending:
        # Validation and JSON happen in the caller, so one bad event cannot fail a batch.
        check_event(event)
        return _Pending(event, fields if isinstance(fields, str) else fields_json(fields))

    def _arrive(self) -> None:
        """A writer is on its way (preparing its record), until it queues or gives up."""
        with self._qlock:
            self._arriving += 1

    def _gave_up(self) -> None:
        with self._qlock:
            self._arriving -= 1
            self._arrived.notify()

    def _enqueue(self, pending: _Pending) -> bool:
        """Queue *pending*; True if the caller must lead (nobody is writing now)."""
        with self._qlock:
            self._queue.append(pending)
            self._arriving -= 1
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
                    records = self._file.commit([(p.event, p.fields_json) for p in batch])
                except AuditError as exc:
                    _settle([(pending, None, exc.message) for pending in batch])
                else:
                    _settle([(p, r, None) for p, r in zip(batch, records, strict=True)])
                batch = []
        except BaseException:
            with self._qlock:
                rest, self._queue, self._leading = self._queue, [], False
            _settle(
                [
                    (pending, None, "the writer was interrupted")
                    for pending in batch + rest
                    if pending.record is None and pending.error is None
                ]
            )
            raise

    def _gather(self) -> None:
        """Give writers already on their way a moment to join the batch (lock held).

        Without this, a lone early writer takes a batch of one and everybody else waits
        a whole fsync for the next. Only writers still on their way count (inside
        ``append`` and not queued yet): not those whose records are written but who have
        not returned (a coroutine the event loop has not resumed, the leading thread
        itself), who will never join. So a single writer never waits, and the wait is
        capped at ``GROUP_WAIT``.
        """
        deadline: float | None = None
        while self._queue and self._arriving:
            now = time.monotonic()
            deadline = deadline or now + GROUP_WAIT
            if now >= deadline:
                return
            self._arrived.wait(deadline - now)


class Auditor(Protocol):
    """Where the daemon's parts record what happened (``AuditLog``); raises to fail closed."""

    async def append(self, event: str, **fields: Any) -> object: ...
