"""The audit page: newest first, filtered, paged by seek; chain status; export."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import json
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from airlock.common.json_text import compact_encoder
from airlock.dashboard.app import Dashboard, of
from airlock.dashboard.security import check_csrf, current_session
from airlock.security._audit_read import matching
from airlock.security.audit import verify_dir

PAGE = 50
EXPORT_LIMIT = 100_000
EXPORT_PART = 1_000
"""Records read and written at a time by an export."""
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
TEXT_LIMIT = 100
SUMMARY_KEYS = (
    "service",
    "op",
    "outcome",
    "channel",
    "purpose",
    "reason",
    "why",
    "error",
    "request_code",
)
CSV_COLUMNS = (
    "seq",
    "ts",
    "event",
    "service",
    "session",
    "uid",
    "channel",
    "outcome",
    "reason",
    "agent",
)


class BadFilter(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    service: str = ""
    event: str = ""
    session: str = ""
    text: str = ""

    def params(self) -> dict[str, str]:
        out = {
            "from": self.since.date().isoformat() if self.since else "",
            "to": (self.until - timedelta(days=1)).date().isoformat() if self.until else "",
            "service": self.service,
            "event": self.event,
            "session": self.session,
            "q": self.text,
        }
        return {k: v for k, v in out.items() if v}

    def match(self, before_seq: int | None = None) -> Callable[[dict[str, Any]], bool]:
        needle = self.folded()

        def wanted(record: dict[str, Any]) -> bool:
            if before_seq is not None and int(record.get("seq", 0)) >= before_seq:
                return False
            if self.session and record.get("session") != self.session:
                return False
            if needle is not None:
                shown = {k: v for k, v in record.items() if k not in ("mac", "prev")}
                return needle in _STORED(shown).encode("ascii").lower()
            return True

        return wanted

    def contains(self) -> tuple[bytes, ...]:
        """Bytes a stored line of the wanted session holds (skips the rest unparsed)."""
        return (b'"session":' + _STORED(self.session).encode("ascii"),) if self.session else ()

    def folded(self) -> bytes | None:
        """The search text as it appears in a stored line, lowercased (ASCII letters fold;
        other characters are stored as \\u escapes and match as written)."""
        if not self.text:
            return None
        return _STORED(self.text)[1:-1].encode("ascii").lower()


# The audit log's own encoding of a record (sorted keys, compact, ASCII): searching the
# stored text lets a search skip lines before parsing them. Records read back are trees.
_STORED = compact_encoder(sort_keys=True)


def _day(raw: str, field: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
    except ValueError:
        raise BadFilter(field, f"{field}: expected a day like 2026-01-31") from None


def _text(request: web.Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if len(value) > TEXT_LIMIT:
        raise BadFilter(name, f"{name}: at most {TEXT_LIMIT} characters")
    return value


def parse_filters(request: web.Request) -> Filters:
    since = _day(request.query.get("from", ""), "from")
    to = _day(request.query.get("to", ""), "to")
    try:
        until = to + timedelta(days=1) if to else None
    except OverflowError:
        raise BadFilter("to", "to: too far in the future") from None
    return Filters(
        since=since,
        until=until,
        service=_text(request, "service"),
        event=_text(request, "event"),
        session=_text(request, "session"),
        text=_text(request, "q"),
    )


def _before(request: web.Request) -> tuple[int, str] | None:
    """The seek cursor: ``SEQ@TS`` of the last record shown."""
    raw = request.query.get("before", "")
    seq, _, ts = raw.partition("@")
    if not raw:
        return None
    if not seq.isdigit() or len(seq) > 18 or not ts:
        raise BadFilter("before", "before: not a page cursor")
    try:
        _cursor_until(ts)
    except (ValueError, OverflowError):
        raise BadFilter("before", "before: not a page cursor") from None
    return int(seq), ts


def _cursor_until(ts: str) -> datetime:
    # Records share a millisecond: read up to the end of it, then drop seq >= cursor.
    parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if parsed.tzinfo is None:  # every record's ts ends in Z; a zoneless one is made up
        raise ValueError("a cursor's time has a zone")
    return parsed + timedelta(milliseconds=1)


def find(
    audit_dir: Path, filters: Filters, before: tuple[int, str] | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first: one page of the records *filters* select, read by seeking to the
    time range, and from *before* (the last record shown) on."""
    found = selected(audit_dir, filters, before)
    with contextlib.closing(found):
        return list(itertools.islice(found, limit))


def selected(
    audit_dir: Path, filters: Filters, before: tuple[int, str] | None = None
) -> Generator[dict[str, Any], None, None]:
    """:func:`find`'s records one by one, as they are read, without a limit."""
    until = filters.until
    if before is not None:
        cursor = _cursor_until(before[1])
        until = cursor if until is None else min(until, cursor)
    return matching(
        audit_dir,
        since=filters.since,
        until=until,
        service=filters.service or None,
        event=filters.event or None,
        newest_first=True,
        match=filters.match(before[0] if before else None),
        contains=filters.contains(),
        contains_folded=filters.folded(),
    )


def _row(record: dict[str, Any]) -> dict[str, Any]:
    services = record.get("services")
    return {
        "seq": record.get("seq"),
        "ts": record.get("ts"),
        "event": record.get("event"),
        "service": record.get("service") or (", ".join(services) if services else ""),
        "session": record.get("session", ""),
        "summary": "; ".join(
            f"{k}={record[k]}" for k in SUMMARY_KEYS if k in record and k != "service"
        ),
        "refusal": record.get("event") in ("operation_denied", "access_denied", "approval_failed")
        or record.get("outcome") == "error",
        "json": json.dumps(record, indent=2, sort_keys=True),
    }


async def audit(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    current_session(request)
    try:
        filters, before = parse_filters(request), _before(request)
    except BadFilter as exc:
        return dash.render(request, "error.html", status=400, message=str(exc))
    started = time.perf_counter()
    records = await asyncio.to_thread(find, dash.rt.audit.audit_dir, filters, before, PAGE + 1)
    elapsed = time.perf_counter() - started
    rows = [_row(r) for r in records[:PAGE]]
    more = None
    if len(records) > PAGE:
        last = records[PAGE - 1]
        more = {**filters.params(), "before": f"{last['seq']}@{last['ts']}"}
    return dash.render(
        request,
        "audit.html",
        rows=rows,
        filters=filters.params(),
        more=more,
        elapsed_ms=round(elapsed * 1000),
        verify=dash.state.get("verify"),
    )


async def export(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    current_session(request)
    kind = request.match_info["kind"]
    try:
        filters = parse_filters(request)
    except BadFilter as exc:
        return dash.render(request, "error.html", status=400, message=str(exc))
    response = web.StreamResponse(
        headers={
            "Content-Type": EXPORT_TYPES[kind],
            "Content-Disposition": f'attachment; filename="airlock-audit.{kind}"',
        }
    )
    await response.prepare(request)
    parts = export_parts(dash.rt.audit.audit_dir, filters, kind)
    try:
        while (part := await asyncio.to_thread(next, parts, None)) is not None:
            # A browser that stops reading ends the download, as an idle connection.
            async with asyncio.timeout(dash.rt.config.daemon.idle_timeout):
                await response.write(part.encode())
    finally:
        # The log's files and what was read, now: not at the next garbage collection
        # (ten downloads hung up held ten files and 178 MB until then).
        with contextlib.suppress(ValueError):  # still in its thread: ends with it
            parts.close()
    await response.write_eof()
    return response


def export_parts(audit_dir: Path, filters: Filters, kind: str) -> Generator[str, None, None]:
    """The export of what *filters* select (newest first, at most EXPORT_LIMIT records),
    as CSV or JSON lines (*kind*), in parts of :data:`EXPORT_PART` records, each read as
    it is asked for: an export of 100,000 records was built whole in memory, several
    exports at once several times over."""
    records = itertools.islice(selected(audit_dir, filters), EXPORT_LIMIT)
    # ASCII JSON lines, as the log stores them: agent text with U+2028, U+2029 or NEL
    # left raw would break a line in two for readers that split on every line break.
    lines = csv_lines(records) if kind == "csv" else (json.dumps(r) + "\n" for r in records)
    while batch := list(itertools.islice(lines, EXPORT_PART)):
        yield "".join(batch)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if value is None:
        text = ""
    # A spreadsheet runs a cell starting with = + - @ as a formula: agent text must not.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(records: Iterable[dict[str, Any]]) -> str:
    return "".join(csv_lines(records))


def csv_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The CSV export, its header row first, a row (one line or more) at a time."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, "details"])
    for record in records:
        rest = {k: v for k, v in record.items() if k not in CSV_COLUMNS}
        writer.writerow(
            [_cell(record.get(c)) for c in CSV_COLUMNS]
            + [_cell(json.dumps(rest, ensure_ascii=False, sort_keys=True))]
        )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


async def run_verify(dash: Dashboard) -> None:
    """Check the chain in a worker thread; the page shows the last result and its time."""
    if dash.state.get("verify", {}).get("running"):
        return
    previous = dash.state.get("verify") or {}
    dash.state["verify"] = {**previous, "running": True}
    paths = dash.rt.paths
    try:
        result = await asyncio.to_thread(verify_dir, paths.audit_dir, paths.audit_key_file)
        outcome = {
            "ok": result.ok,
            "records": result.records,
            "problem": str(result.problem) if result.problem else "",
        }
    except Exception as exc:  # an unreadable log is a result to show, not a crash
        outcome = {"ok": False, "records": 0, "problem": f"{type(exc).__name__}: {exc}"[:300]}
    finished = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    dash.state["verify"] = {**outcome, "running": False, "at": finished}


async def verify(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    await check_csrf(request, dash.auth)
    dash.spawn(run_verify(dash))
    raise web.HTTPSeeOther("/audit")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/audit", audit)
    router.add_get(r"/audit/export.{kind:csv|jsonl}", export)
    router.add_post("/audit/verify", verify)
