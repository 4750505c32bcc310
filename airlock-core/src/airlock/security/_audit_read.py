"""Reading the audit log back: ``query`` (seek by time, filter).

A fixed-width ``ts`` starts every line, so a query bisects on byte offsets to the first
record of its range and reads only the range, parsing it in blocks (one JSON parse per
block, not per line). Checking the chain is ``_audit_verify``'s.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from airlock.common.nesting import nested_deeper_than
from airlock.security._audit_chain import (
    HEAD,
    SEQ_AT,
)
from airlock.security._audit_format import log_files, ts_bound

_FIRST_BLOCK = 64 * 1024
_MAX_BLOCK = 4 * 1024 * 1024

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


def _blocks(path: Path, start: int, end: int, *, backward: bool) -> Iterator[bytes]:
    """Whole lines of [start, end) in blocks growing from 64 KiB to 4 MiB.

    Small first blocks keep ``limit=10`` cheap; big later ones keep a day's worth fast.
    A partial line at the very end (a record being written right now) is left out.
    """
    size = _FIRST_BLOCK
    with open(path, "rb") as handle:
        if not backward:
            pos, carry = start, b""
            while pos < end:
                handle.seek(pos)
                data = carry + handle.read(min(size, end - pos))
                if len(data) == len(carry):
                    return
                pos += len(data) - len(carry)
                cut = data.rfind(b"\n") + 1
                carry = data[cut:]
                if cut:
                    yield data[:cut]
                size = min(size * 2, _MAX_BLOCK)
            return
        pos, carry = end, b""
        if end > start:  # drop a partial last line
            handle.seek(end - 1)
            if handle.read(1) != b"\n":
                handle.seek(start)
                tail = handle.read(end - start)
                pos = start + tail.rfind(b"\n") + 1
        while pos > start:
            step = min(size, pos - start)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + carry
            if pos > start:
                cut = data.find(b"\n") + 1  # before it: the end of a line that began earlier
                carry, data = (data, b"") if cut == 0 else (data[:cut], data[cut:])
            else:
                carry = b""
            if data:
                yield data
            size = min(size * 2, _MAX_BLOCK)


def _wanted(line: bytes, needles: tuple[bytes, ...], folded: bytes | None) -> bool:
    return all(n in line for n in needles) and (folded is None or folded in line.lower())


def _parse(
    block: bytes, needles: tuple[bytes, ...], folded: bytes | None = None
) -> list[dict[str, Any]]:
    """The records of a block of lines, in order; lines that do not parse are skipped.

    One ``json.loads`` of the block as an array (JSON strings cannot hold a raw newline,
    so newline-to-comma is safe); if that fails or the count is off, line by line.
    *needles* are byte strings every wanted line contains, *folded* one its lowercased
    form contains: cheap pre-filters, checked properly after parsing.
    """
    if needles or folded is not None:
        lines = [line for line in block.split(b"\n") if _wanted(line, needles, folded)]
        joined, count = b",".join(lines), len(lines)
    else:
        joined, count = block.rstrip(b"\n").replace(b"\n", b","), block.count(b"\n")
    if not count:
        return []
    try:
        records = json.loads(b"[" + joined + b"]")
    except (ValueError, RecursionError):  # RecursionError: a line nested past the parser
        records = None
    if not isinstance(records, list) or len(records) != count:
        records = []
        for line in block.split(b"\n"):
            if not line or not _wanted(line, needles, folded):
                continue
            try:
                records.append(json.loads(line))
            except (ValueError, RecursionError):
                continue
    return [record for record in records if _well_formed(record)]


def _well_formed(record: object) -> bool:
    """Shaped as every record Airlock writes: an object with an integer ``seq`` and a text
    ``ts``. Other lines were put in the files by hand; the readers skip them (``verify``
    names them) instead of failing on them, so a planted line cannot hide the log."""
    return (
        isinstance(record, dict)
        and type(record.get("seq")) is int
        and isinstance(record.get("ts"), str)
    )


MAX_RECORD_DEPTH = 64
"""Deeper than any record Airlock writes (a body nests at most 32 levels); JSON output
(``GET /v1/audit``) stops at about 250."""


def shallow(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """*records* less those nested deeper than :data:`MAX_RECORD_DEPTH` (put there by hand)."""
    return [r for r in records if not nested_deeper_than(r, MAX_RECORD_DEPTH)]


def query(audit_dir: Path, *, limit: int | None = None, **criteria: Any) -> list[dict[str, Any]]:
    """The records :func:`matching` gives for *criteria*, at most *limit* of them: the
    oldest (or with ``newest_first``, the newest)."""
    if limit is not None and limit <= 0:
        return []
    found = matching(audit_dir, **criteria)
    with contextlib.closing(found):
        return list(itertools.islice(found, limit))


def matching(
    audit_dir: Path,
    *,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    service: str | None = None,
    event: str | None = None,
    newest_first: bool = False,
    match: Callable[[dict[str, Any]], bool] | None = None,
    contains: tuple[bytes, ...] = (),
    contains_folded: bytes | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Records with ``since <= ts < until``, optionally of one service or event, one by
    one as they are read (a block at a time: a caller may pass them on without holding
    them all, as the dashboard's export does), oldest first unless *newest_first*.

    Files are picked by the first ts in their names and each is entered by binary search
    on byte offsets, so a day out of a year-long log costs a few dozen seeks plus the
    day itself. A record matches *service* if its ``service`` is it or its ``services``
    contain it, and *match* (if given) when it returns true. *contains* (bytes every
    stored line must hold) and *contains_folded* (bytes its ASCII-lowercased form must
    hold) skip lines before they are parsed; they narrow, and *match* decides.
    Unreadable lines are skipped here; ``verify`` is the place that reports them.
    """
    since_ts = ts_bound(since) if since is not None else None
    until_ts = ts_bound(until) if until is not None else None
    ranges = _ranges(audit_dir, since_ts, until_ts)
    needles: list[bytes] = list(contains)
    if event is not None:
        needles.append(b'"event":' + json.dumps(event).encode("ascii"))
    if service is not None:
        needles.append(json.dumps(service).encode("ascii"))
    for path, start, end in reversed(ranges) if newest_first else ranges:
        try:
            blocks = _blocks(path, start, end, backward=newest_first)
            first = next(blocks, None)  # the file opened: it may have gone meanwhile
        except FileNotFoundError:  # dropped by the size budget since the ranges were read
            continue
        for block in itertools.chain([first] if first is not None else [], blocks):
            records = _parse(block, tuple(needles), contains_folded)
            for record in reversed(records) if newest_first else records:
                if event is not None and record.get("event") != event:
                    continue
                if service is not None and not _has_service(record, service):
                    continue
                if match is not None and not match(record):
                    continue
                yield record


def _has_service(record: dict[str, Any], service: str) -> bool:
    if record.get("service") == service:
        return True
    services = record.get("services")
    return isinstance(services, list) and service in services
