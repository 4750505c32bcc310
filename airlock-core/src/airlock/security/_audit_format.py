"""The audit line format and the files it lives in: what ``audit.py`` writes and
``_audit_read.py`` reads back. See ``airlock.security.audit`` for the design. A
record's fields (scrubbed, as JSON text) are ``_audit_fields``'s.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airlock.common.files import PRIVATE_FILE, ensure_private_dir, fsync_dir
from airlock.errors import AuditError
from airlock.security._audit_chain import HEAD, SEQ_AT, SEQ_MARK
from airlock.security._audit_fields import fields_json

CURRENT_NAME = "audit.jsonl"
KEY_BYTES = 32

_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")  # \Z: "$" lets a final line break in
_ROTATED = re.compile(r"^audit-(\d{8}T\d{6}\.\d{3}Z)-(\d{12})\.jsonl$")

# --- line format ------------------------------------------------------------------------


def format_ts(when: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``; sorts as text in time order."""
    total_ms = round(when * 1000)
    seconds, millis = divmod(total_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def ts_bound(when: float | datetime) -> str:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return format_ts(when.timestamp())
    return format_ts(when)


def encode_line(
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
    check_event(event)
    return encode_line(key, seq, ts, event, fields_json(fields), prev)


def check_event(event: str) -> None:
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


def key_for_log(path: Path, audit_dir: Path) -> bytes:
    """The key of the log in *audit_dir*: created only for a log with no records yet.

    A new key for records made with a lost one would make each of them look edited
    (``audit verify``: "mac mismatch") and hide that the key went missing.
    """
    if not path.exists() and any(_size(f.path) for f in log_files(audit_dir)):
        raise AuditError(
            f"no audit key at {path}, but {audit_dir} holds records made with one",
            hint="restore the key from a backup; with a new key no record could be checked",
        )
    return load_or_create_key(path)


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
class LogFile:
    path: Path
    first_seq: int | None  # None for the current file (read from its first line)
    first_ts: str | None


def log_files(audit_dir: Path) -> list[LogFile]:
    """Rotated files in chain order, then ``audit.jsonl`` (if present)."""
    rotated: list[LogFile] = []
    try:
        names = os.listdir(audit_dir)
    except FileNotFoundError:
        return []
    for name in names:
        match = _ROTATED.match(name)
        if match:
            rotated.append(
                LogFile(audit_dir / name, int(match.group(2)), _uncompact(match.group(1)))
            )
    rotated.sort(key=lambda f: f.first_seq or 0)
    current = audit_dir / CURRENT_NAME
    if current.is_file():
        try:
            first = _first_line(current)
        except FileNotFoundError:  # rotated away meanwhile (the next write makes a new one)
            return rotated
        ts = _line_ts(first) if first else None
        rotated.append(LogFile(current, None, ts))
    return rotated


def _first_line(path: Path) -> bytes | None:
    with open(path, "rb") as handle:
        line = handle.readline()
    return line if line.endswith(b"\n") else None


def first_line_of(fd: int) -> bytes:
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
    if line.startswith(HEAD) and line[SEQ_AT : SEQ_AT + len(SEQ_MARK)] == SEQ_MARK:
        try:
            return line[len(HEAD) : SEQ_AT].decode("ascii")
        except UnicodeDecodeError:
            return None
    return None


def read_tail(fd: int) -> tuple[bytes | None, int]:
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # rotated away meanwhile
        return 0
