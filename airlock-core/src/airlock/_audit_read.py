"""Reading the audit log back: ``query`` (seek by time, filter) and ``verify`` (the chain).

Both rely on the line layout of ``_audit_format``: a fixed-width ``ts`` at the start of
every line lets a query bisect on byte offsets, and the fixed-width ``prev``/``mac``
tail lets the verifier recover each record's canonical bytes without re-serialising it,
which keeps a million-record check to a few seconds.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from airlock._audit_format import (
    GENESIS,
    HEAD,
    MAC_MARK,
    MAC_TAIL,
    PREV_MARK,
    PREV_TAIL,
    SEQ_AT,
    SEQ_MARK,
    log_files,
    ts_bound,
)

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
        ts = line[len(HEAD) : SEQ_AT] if line.startswith(HEAD) else b""
        if ts >= key:
            hi = mid
        else:
            lo = mid + 1
    return _line_start(handle, lo)


def _ranges(audit_dir: Path, since: str | None, until: str | None) -> list[tuple[Path, int, int]]:
    """(file, start, end) byte ranges holding the records in [since, until)."""
    files = log_files(audit_dir)
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
    since_ts = ts_bound(since) if since is not None else None
    until_ts = ts_bound(until) if until is not None else None
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
    files = [f.path for f in log_files(audit_dir)]
    expected_seq, prev = 1, GENESIS.encode("ascii")
    count = 0
    digest = hmac.digest
    for path in files:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                shaped = (
                    line.startswith(HEAD)
                    and line[SEQ_AT : SEQ_AT + len(SEQ_MARK)] == SEQ_MARK
                    and line.endswith(b'"}\n')
                    and line[-MAC_TAIL : -MAC_TAIL + len(MAC_MARK)] == MAC_MARK
                    and line[-PREV_TAIL : -PREV_TAIL + len(PREV_MARK)] == PREV_MARK
                    and line[-MAC_TAIL - 1 : -MAC_TAIL] == b'"'
                )
                if not shaped:
                    problem = VerifyProblem(path, number, _diagnose(line))
                    return VerifyResult(False, count, files, problem, expected_seq - 1)
                body = line[:-MAC_TAIL] + b"}"
                record_prev = line[-PREV_TAIL + len(PREV_MARK) : -MAC_TAIL - 1]
                mac_hex = line[-MAC_TAIL + len(MAC_MARK) : -3]
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
                digits = SEQ_AT + len(SEQ_MARK)
                seq = int(line[digits : line.find(b",", digits)])
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
