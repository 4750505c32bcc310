"""The tamper-evident audit log (DESIGN §7).

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
``mac``).

**Secrets never reach the log.** Every field passes :func:`scrub`: values under keys
that name secrets (password, token, secret, totp, code, claim, authorization,
api_key, ...) become ``"[redacted]"``, ``SecretStr`` values too, and any ``alk_``
session token or ``Bearer`` credential inside a string is masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, SecretBytes, SecretStr

from airlock.clock import Clock, SystemClock
from airlock.errors import AuditError
from airlock.files import PRIVATE_FILE, ensure_private_dir, fsync_dir, open_private_append

if TYPE_CHECKING:
    from airlock.config import AuditConfig
    from airlock.paths import AirlockPaths

__all__ = [
    "CURRENT_NAME",
    "GENESIS",
    "AuditLog",
    "AuditRecord",
    "VerifyProblem",
    "VerifyResult",
    "encode_record",
    "format_ts",
    "load_key",
    "load_or_create_key",
    "open_log",
    "query",
    "rotated_name",
    "scrub",
    "verify",
    "verify_dir",
]

CURRENT_NAME = "audit.jsonl"
GENESIS = "0" * 64
KEY_BYTES = 32
REDACTED = "[redacted]"
RESERVED = frozenset({"ts", "seq", "event", "prev", "mac"})
MAX_STRING = 4096
MAX_ITEMS = 1000
MAX_DEPTH = 12

_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ROTATED = re.compile(r"^audit-(\d{8}T\d{6}\.\d{3}Z)-(\d{12})\.jsonl$")
_TS_LEN = 24  # 2026-01-26T15:30:00.123Z
_HEAD = b'{"ts":"'
_SEQ_AT = len(_HEAD) + _TS_LEN  # where '","seq":' starts
_SEQ_MARK = b'","seq":'
_MAC_MARK = b',"mac":"'
_PREV_MARK = b',"prev":"'
_MAC_TAIL = len(_MAC_MARK) + 64 + len(b'"}\n')  # bytes after the canonical body's last '"'
_PREV_TAIL = _MAC_TAIL + 1 + 64 + len(_PREV_MARK)

# --- secrets out ----------------------------------------------------------------------

_SECRET_KEYS = frozenset(
    {
        "code",
        "otp",
        "claim",
        "token",
        "pin",
        "2fa",
        "mfa",
        "mfa_code",
        "auth_code",
        "verification_code",
        "x_airlock_claim",
        "x_airlock_totp",
    }
)
_SECRET_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "authorization",
    "api_key",
    "apikey",
    "private_key",
    "cookie",
    "credential",
    "bot_token",
)
_SECRET_PREFIXES = ("totp",)
_SECRET_SUFFIXES = ("_token", "_claim", "_otp")
_TOKEN_IN_TEXT = re.compile(r"alk_[A-Za-z0-9_-]{8,}")
_BEARER_IN_TEXT = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def _secret_key(name: str) -> bool:
    key = name.lower().replace("-", "_")
    return (
        key in _SECRET_KEYS
        or any(part in key for part in _SECRET_PARTS)
        or key.startswith(_SECRET_PREFIXES)
        or key.endswith(_SECRET_SUFFIXES)
    )


def _scrub_text(text: str) -> str:
    if len(text) > MAX_STRING:
        text = f"{text[:MAX_STRING]}…[+{len(text) - MAX_STRING} chars]"
    if "alk_" in text:
        text = _TOKEN_IN_TEXT.sub("alk_" + REDACTED, text)
    return _BEARER_IN_TEXT.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def scrub(value: Any, *, _depth: int = 0) -> Any:
    """*value* as JSON-ready data with secrets replaced by ``"[redacted]"``."""
    if _depth > MAX_DEPTH:
        return "[too deep]"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, enum.Enum):
        return scrub(value.value, _depth=_depth + 1)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return _scrub_text(str(value))
    if isinstance(value, BaseModel):
        # SecretStr fields dump as "**********"; the key rules catch their names too.
        return scrub(value.model_dump(mode="json"), _depth=_depth + 1)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                out["[truncated]"] = f"{len(value) - MAX_ITEMS} more keys"
                break
            name = str(key)
            out[name] = REDACTED if _secret_key(name) else scrub(item, _depth=_depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        cleaned = [scrub(item, _depth=_depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            cleaned.append(f"[+{len(items) - MAX_ITEMS} more]")
        return cleaned
    if isinstance(value, bytes | bytearray):
        return f"[{len(value)} bytes]"
    return _scrub_text(str(value))


# --- line format ------------------------------------------------------------------------


def format_ts(when: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``; sorts as text in time order."""
    total_ms = round(when * 1000)
    seconds, millis = divmod(total_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _ts_bound(when: float | datetime) -> str:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return format_ts(when.timestamp())
    return format_ts(when)


def _fields_json(fields: Mapping[str, Any]) -> str:
    """The scrubbed fields as ``,"k":v,...`` (keys sorted), ready to splice into a line."""
    for name in fields:
        if name in RESERVED:
            raise ValueError(f"audit field name {name!r} is reserved")
    clean = scrub(dict(fields))
    if not clean:
        return ""
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "," + text[1:-1]


def _encode(
    key: bytes, seq: int, ts: str, event: str, fields_json: str, prev: str
) -> tuple[bytes, str]:
    body = f'{{"ts":"{ts}","seq":{seq},"event":"{event}"{fields_json},"prev":"{prev}"}}'
    raw = body.encode("ascii")
    mac = hmac.digest(key, bytes.fromhex(prev) + raw, "sha256").hex()
    return raw[:-1] + b',"mac":"' + mac.encode("ascii") + b'"}\n', mac


def encode_record(
    key: bytes, *, seq: int, ts: str, event: str, fields: Mapping[str, Any], prev: str
) -> tuple[bytes, str]:
    """One audit line (with its newline) and its mac, exactly as ``AuditLog`` writes it."""
    _check_event(event)
    return _encode(key, seq, ts, event, _fields_json(fields), prev)


def _check_event(event: str) -> None:
    if not _EVENT_NAME.match(event):
        raise ValueError(f"audit event name {event[:70]!r} must be lowercase letters, digits, _")


def rotated_name(first_ts: str, first_seq: int) -> str:
    """The name a full ``audit.jsonl`` is renamed to."""
    compact = first_ts.replace("-", "").replace(":", "")
    return f"audit-{compact}-{first_seq:012d}.jsonl"


def _uncompact(stamp: str) -> str:
    # 20260126T153000.123Z -> 2026-01-26T15:30:00.123Z
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:]}"


# --- key ------------------------------------------------------------------------------


def load_key(path: Path) -> bytes:
    """The audit key; ``AuditError`` if it is missing or damaged."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise AuditError(
            f"no audit key at {path}", hint="the daemon creates it with the first record"
        ) from None
    except OSError as exc:
        raise AuditError(f"{path}: cannot be read: {exc.strerror}") from None
    if len(key) != KEY_BYTES:
        raise AuditError(f"{path}: not an audit key ({len(key)} bytes, expected {KEY_BYTES})")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The audit key, created (32 random bytes, 0600) if there is none yet.

    Creation links a fully written temp file into place, so two processes starting at
    once agree on one key and nobody ever reads a half-written one.
    """
    if path.exists():
        return load_key(path)
    try:
        ensure_private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        fsync_dir(path.parent)
    except OSError as exc:
        raise AuditError(f"{path}: cannot create the audit key: {exc.strerror}") from None
    return load_key(path)


# --- files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LogFile:
    path: Path
    first_seq: int | None  # None for the current file (read from its first line)
    first_ts: str | None


def _log_files(audit_dir: Path) -> list[_LogFile]:
    """Rotated files in chain order, then ``audit.jsonl`` (if present)."""
    rotated: list[_LogFile] = []
    try:
        names = os.listdir(audit_dir)
    except FileNotFoundError:
        return []
    for name in names:
        match = _ROTATED.match(name)
        if match:
            rotated.append(
                _LogFile(audit_dir / name, int(match.group(2)), _uncompact(match.group(1)))
            )
    rotated.sort(key=lambda f: f.first_seq or 0)
    current = audit_dir / CURRENT_NAME
    if current.is_file():
        first = _first_line(current)
        ts = _line_ts(first) if first else None
        rotated.append(_LogFile(current, None, ts))
    return rotated


def _first_line(path: Path) -> bytes | None:
    with open(path, "rb") as handle:
        line = handle.readline()
    return line if line.endswith(b"\n") else None


def _first_line_of(fd: int) -> bytes:
    data, chunk = b"", 4096
    while True:
        part = os.pread(fd, chunk, len(data))
        if not part:
            return data
        data += part
        newline = data.find(b"\n")
        if newline != -1:
            return data[: newline + 1]
        chunk *= 2


def _line_ts(line: bytes) -> str | None:
    if line.startswith(_HEAD) and line[_SEQ_AT : _SEQ_AT + len(_SEQ_MARK)] == _SEQ_MARK:
        try:
            return line[len(_HEAD) : _SEQ_AT].decode("ascii")
        except UnicodeDecodeError:
            return None
    return None


def _tail(fd: int) -> tuple[bytes | None, int]:
    """The last complete line of the file and the size up to its end (dropping a partial tail)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, 0
    chunk = 8192
    end = size
    data = b""
    while True:
        start = max(0, end - chunk)
        data = os.pread(fd, end - start, start) + data
        end = start
        last_nl = data.rfind(b"\n")
        if last_nl == -1:
            if start == 0:
                return None, 0
            chunk *= 2
            continue
        good = start + last_nl + 1
        prev_nl = data.rfind(b"\n", 0, last_nl)
        if prev_nl != -1 or start == 0:
            return data[prev_nl + 1 : last_nl + 1], good
        chunk *= 2


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
    done: threading.Event | None = None
    future: asyncio.Future[AuditRecord] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    record: AuditRecord | None = None
    error: str | None = None

    def settle(self, record: AuditRecord | None, error: str | None) -> None:
        self.record, self.error = record, error
        if self.done is not None:
            self.done.set()
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
        self._key = key
        self._rotate_bytes = rotate_bytes
        self._clock: Clock = clock or SystemClock()
        self._queue: list[_Pending] = []
        self._qlock = threading.Lock()
        self._leading = False
        self._chain = _Chain()
        self._current: _Current | None = None
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"AuditLog({str(self.audit_dir)!r})"

    @property
    def current_path(self) -> Path:
        return self.audit_dir / CURRENT_NAME

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
        pending = self._prepare(event, fields)
        loop = asyncio.get_running_loop()
        pending.loop, pending.future = loop, loop.create_future()
        if self._enqueue(pending):
            loop.run_in_executor(None, self._lead)
        return await pending.future

    def append_sync(self, event: str, **fields: Any) -> AuditRecord:
        """``append`` for threads and sync code (the CLI): blocks until the record is durable."""
        pending = self._prepare(event, fields)
        pending.done = threading.Event()
        if self._enqueue(pending):
            self._lead()
        pending.done.wait()
        if pending.record is None:
            raise _audit_error(pending.error or "unknown failure")
        return pending.record

    def query(self, **criteria: Any) -> list[dict[str, Any]]:
        """:func:`query` on this log's directory."""
        return query(self.audit_dir, **criteria)

    def _prepare(self, event: str, fields: Mapping[str, Any]) -> _Pending:
        # Validation and JSON happen in the caller, so one bad event cannot fail a batch.
        _check_event(event)
        return _Pending(event, _fields_json(fields))

    def _enqueue(self, pending: _Pending) -> bool:
        """Queue *pending*; True if the caller must lead (nobody is writing now)."""
        with self._qlock:
            self._queue.append(pending)
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
            st = os.stat(self.current_path, follow_symlinks=False)
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
        fd = open_private_append(self.current_path)
        try:
            info = os.fstat(fd)
            if st is None:
                fsync_dir(self.audit_dir)
            last, good = _tail(fd)
            repaired = info.st_size - good
            if repaired:
                os.ftruncate(fd, good)
                os.fsync(fd)
            current = _Current(fd, (info.st_dev, info.st_ino), good, repaired=repaired)
            if good:
                current.first = _seq_ts(_first_line_of(fd), self.current_path)
            self._chain = self._chain_from(last)
        except BaseException:
            os.close(fd)
            raise
        self._current = current
        return current

    def _chain_from(self, last: bytes | None) -> _Chain:
        if last is None:
            rotated = [f for f in _log_files(self.audit_dir) if f.first_seq is not None]
            if not rotated:
                return _Chain()
            with open(rotated[-1].path, "rb") as handle:
                last, _ = _tail(handle.fileno())
            if last is None:
                return _Chain()
        try:
            record = json.loads(last)
            return _Chain(int(record["seq"]), str(record["mac"]), str(record["ts"]))
        except (ValueError, KeyError, TypeError):
            raise AuditError(
                "the last audit record is unreadable, so the chain cannot continue"
            ) from None

    def _write_batch(self, current: _Current, batch: list[_Pending]) -> list[AuditRecord]:
        chain = _Chain(self._chain.seq, self._chain.mac, self._chain.ts)
        ts = max(format_ts(self._clock.now()), chain.ts)
        entries = [(p.event, p.fields_json) for p in batch]
        if current.repaired:
            entries.insert(0, ("audit_tail_repaired", f',"dropped_bytes":{current.repaired}'))
        lines: list[bytes] = []
        records: list[AuditRecord] = []
        for event, fields_json in entries:
            chain.seq += 1
            line, chain.mac = _encode(self._key, chain.seq, ts, event, fields_json, chain.mac)
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


# --- reading ------------------------------------------------------------------------------


def _line_start(handle: IO[bytes], pos: int) -> int:
    """The start of the first line beginning at or after *pos*."""
    if pos == 0:
        return 0
    handle.seek(pos - 1)
    handle.readline()
    return handle.tell()


def _bisect(handle: IO[bytes], size: int, bound: str) -> int:
    """Offset of the first line whose ts >= *bound* (``size`` if none). Lines are sorted."""
    key = bound.encode("ascii")
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        start = _line_start(handle, mid)
        if start >= size:
            hi = mid
            continue
        handle.seek(start)
        line = handle.readline()
        ts = line[len(_HEAD) : _SEQ_AT] if line.startswith(_HEAD) else b""
        if ts >= key:
            hi = mid
        else:
            lo = mid + 1
    return _line_start(handle, lo)


def _ranges(audit_dir: Path, since: str | None, until: str | None) -> list[tuple[Path, int, int]]:
    """(file, start, end) byte ranges holding the records in [since, until)."""
    files = _log_files(audit_dir)
    out: list[tuple[Path, int, int]] = []
    for index, log_file in enumerate(files):
        if log_file.first_ts is None:
            continue
        if until is not None and log_file.first_ts >= until:
            break
        following = files[index + 1].first_ts if index + 1 < len(files) else None
        if since is not None and following is not None and following < since:
            continue
        try:
            with open(log_file.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                start = _bisect(handle, size, since) if since else 0
                end = _bisect(handle, size, until) if until else size
        except FileNotFoundError:  # rotated away meanwhile; its new name is not in our list
            continue
        if start < end:
            out.append((log_file.path, start, end))
    return out


def _lines_forward(path: Path, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(start)
        pos = start
        while pos < end:
            line = handle.readline()
            if not line:
                return
            pos += len(line)
            yield line


def _lines_backward(path: Path, start: int, end: int, block: int = 65536) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        pos, carry = end, b""
        while pos > start:
            size = min(block, pos - start)
            pos -= size
            handle.seek(pos)
            chunk = handle.read(size) + carry
            lines = chunk.split(b"\n")
            carry = lines[0]
            for line in reversed(lines[1:]):
                if line:
                    yield line + b"\n"
        if carry:
            yield carry + b"\n"


def query(
    audit_dir: Path,
    *,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    service: str | None = None,
    event: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Records with ``since <= ts < until``, optionally of one service or event.

    Files are picked by the first ts in their names and each is entered by binary search
    on byte offsets, so a day out of a year-long log costs a few dozen seeks plus the
    day itself. ``limit`` keeps the oldest (or with *newest_first*, the newest) matches.
    A record matches *service* if its ``service`` is it or its ``services`` contain it.
    Unreadable lines are skipped here; ``verify`` is the place that reports them.
    """
    since_ts = _ts_bound(since) if since is not None else None
    until_ts = _ts_bound(until) if until is not None else None
    ranges = _ranges(audit_dir, since_ts, until_ts)
    out: list[dict[str, Any]] = []
    if limit is not None and limit <= 0:
        return out
    ordered = reversed(ranges) if newest_first else iter(ranges)
    for path, start, end in ordered:
        lines = (
            _lines_backward(path, start, end) if newest_first else _lines_forward(path, start, end)
        )
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if event is not None and record.get("event") != event:
                continue
            if service is not None and not _has_service(record, service):
                continue
            out.append(record)
            if limit is not None and len(out) >= limit:
                return out
    return out


def _has_service(record: dict[str, Any], service: str) -> bool:
    if record.get("service") == service:
        return True
    services = record.get("services")
    return isinstance(services, list) and service in services


# --- verifying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyProblem:
    """The first place the chain breaks: file, 1-based line, and what is wrong."""

    file: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    files: list[Path] = field(default_factory=list)
    problem: VerifyProblem | None = None
    last_seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "files": [str(f) for f in self.files],
            "last_seq": self.last_seq,
            "problem": None
            if self.problem is None
            else {
                "file": str(self.problem.file),
                "line": self.problem.line,
                "reason": self.problem.reason,
            },
        }


def _diagnose(line: bytes) -> str:
    """Why a line that failed the fast checks is bad."""
    if not line.endswith(b"\n"):
        return "the last line is cut short (crash while writing, or truncated)"
    try:
        record = json.loads(line)
    except ValueError:
        return "not a JSON record (damaged or cut short)"
    if not isinstance(record, dict) or "mac" not in record:
        return "not an audit record"
    return "record was changed (not in the form Airlock writes)"


def verify(audit_dir: Path, key: bytes) -> VerifyResult:
    """Check every record's mac, ``seq`` and ``prev`` across all files, oldest first.

    Stops at the first problem and names its file and line: an edited record fails its
    mac, a deleted or reordered one breaks ``seq``, a line cut short does not parse, and a
    record spliced in from elsewhere breaks ``prev``.
    """
    files = [f.path for f in _log_files(audit_dir)]
    expected_seq, prev = 1, GENESIS.encode("ascii")
    count = 0
    digest = hmac.digest
    for path in files:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                shaped = (
                    line.startswith(_HEAD)
                    and line[_SEQ_AT : _SEQ_AT + len(_SEQ_MARK)] == _SEQ_MARK
                    and line.endswith(b'"}\n')
                    and line[-_MAC_TAIL : -_MAC_TAIL + len(_MAC_MARK)] == _MAC_MARK
                    and line[-_PREV_TAIL : -_PREV_TAIL + len(_PREV_MARK)] == _PREV_MARK
                    and line[-_MAC_TAIL - 1 : -_MAC_TAIL] == b'"'
                )
                if not shaped:
                    problem = VerifyProblem(path, number, _diagnose(line))
                    return VerifyResult(False, count, files, problem, expected_seq - 1)
                body = line[:-_MAC_TAIL] + b"}"
                record_prev = line[-_PREV_TAIL + len(_PREV_MARK) : -_MAC_TAIL - 1]
                mac_hex = line[-_MAC_TAIL + len(_MAC_MARK) : -3]
                try:
                    ok = hmac.compare_digest(
                        digest(key, bytes.fromhex(record_prev.decode()) + body, "sha256"),
                        bytes.fromhex(mac_hex.decode()),
                    )
                except ValueError:
                    ok = False
                if not ok:
                    problem = VerifyProblem(path, number, "mac mismatch: the record was changed")
                    return VerifyResult(False, count, files, problem, expected_seq - 1)
                comma = line.find(b",", _SEQ_AT)
                seq = int(line[_SEQ_AT + len(_SEQ_MARK) : comma])
                if seq != expected_seq:
                    if seq > expected_seq:
                        missing = (
                            f"record {expected_seq} is missing"
                            if seq == expected_seq + 1
                            else f"records {expected_seq}-{seq - 1} are missing"
                        )
                        reason = (
                            f"sequence gap: expected seq {expected_seq}, found {seq} ({missing})"
                        )
                    else:
                        reason = (
                            f"out of order: expected seq {expected_seq}, found {seq} "
                            "(records moved or repeated)"
                        )
                    problem = VerifyProblem(path, number, reason)
                    return VerifyResult(False, count, files, problem, expected_seq - 1)
                if record_prev != prev:
                    problem = VerifyProblem(
                        path, number, "chain broken: prev is not the previous record's mac"
                    )
                    return VerifyResult(False, count, files, problem, expected_seq - 1)
                prev = mac_hex
                expected_seq += 1
                count += 1
    return VerifyResult(True, count, files, None, expected_seq - 1)


def verify_dir(audit_dir: Path, key_file: Path) -> VerifyResult:
    """``airlock audit verify`` without the CLI: load the key, verify the directory."""
    return verify(audit_dir, load_key(key_file))


def open_log(paths: AirlockPaths, config: AuditConfig, clock: Clock | None = None) -> AuditLog:
    """The log under *paths* with its key (created on first use) and rotation size."""
    try:
        ensure_private_dir(paths.audit_dir)
    except OSError as exc:
        raise AuditError(f"{paths.audit_dir}: cannot be created: {exc.strerror}") from None
    key = load_or_create_key(paths.audit_key_file)
    return AuditLog(paths.audit_dir, key, rotate_bytes=config.rotate_bytes, clock=clock)


def key_fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key (to tell which key signed a log)."""
    return hashlib.sha256(b"airlock audit key|" + key).hexdigest()[:16]
