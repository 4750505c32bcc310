"""Operations per hour per service over the last 7 days, drawn as server-side SVG."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from airlock.dashboard.app import Dashboard, of
from airlock.dashboard.security import current_session
from airlock.security.audit import query

HOURS = 7 * 24
BAR = 6  # px per hour
HEIGHT = 60
EVENTS = ("operation", "operation_denied")


def _hour(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() // 3600)


Hourly = dict[int, dict[str, list[int]]]  # hour -> service -> [ok, refused]


def count_hours(audit_dir: Path, since_hour: int) -> Hourly:
    """Operations and refusals per service for each hour from *since_hour* on."""
    out: Hourly = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for event in EVENTS:  # one seek-and-filter pass each, pre-filtered on the raw bytes
        for record in query(audit_dir, since=since_hour * 3600, event=event):
            service = record.get("service")
            if not isinstance(service, str):
                continue
            refused = event == "operation_denied" or record.get("outcome") == "error"
            out[_hour(str(record.get("ts", "")))][service][1 if refused else 0] += 1
    return out


class ActivityCache:
    """Past hours never change: each is counted once, later only the current hour is.

    The first look at a busy week reads it whole (seconds on a million records, so the
    dashboard warms this at start); every later one reads the current hour only.
    """

    def __init__(self) -> None:
        self._done: Hourly = {}
        self._counted_before: int | None = None  # every hour below this is in _done

    def counts(self, audit_dir: Path, now: float) -> dict[str, dict[str, list[int]]]:
        """Per service: ``ok`` and ``refused`` counts for each of the last 168 hours."""
        current = int(now // 3600)
        first = current - HOURS + 1
        start = first if self._counted_before is None else max(first, self._counted_before)
        fresh = count_hours(audit_dir, start)
        for hour, services in fresh.items():
            if hour < current:
                self._done[hour] = services
        self._counted_before = current
        self._done = {h: v for h, v in self._done.items() if h >= first}
        out: dict[str, dict[str, list[int]]] = defaultdict(
            lambda: {"ok": [0] * HOURS, "refused": [0] * HOURS}
        )
        for hour, services in [*self._done.items(), (current, fresh.get(current, {}))]:
            for service, (ok, refused) in services.items():
                out[service]["ok"][hour - first] += ok
                out[service]["refused"][hour - first] += refused
        return dict(sorted(out.items()))


def count(audit_dir: Path, now: float) -> dict[str, dict[str, list[int]]]:
    """The last 168 hours counted from scratch (what the cache returns the first time)."""
    return ActivityCache().counts(audit_dir, now)


def chart(counts: dict[str, list[int]]) -> dict[str, Any]:
    """Bar geometry for one service: refusals stacked on top of the rest, in red."""
    totals = [a + b for a, b in zip(counts["ok"], counts["refused"], strict=True)]
    peak = max(totals) or 1
    bars = []
    for slot, (ok, refused) in enumerate(zip(counts["ok"], counts["refused"], strict=True)):
        ok_h = round(ok / peak * HEIGHT)
        refused_h = round(refused / peak * HEIGHT)
        if refused and not refused_h:
            refused_h = 1  # a single refusal among many stays visible
        x = slot * BAR
        if ok_h:
            bars.append({"x": x, "y": HEIGHT - ok_h, "h": ok_h, "kind": "ok"})
        if refused_h:
            y = HEIGHT - ok_h - refused_h
            bars.append({"x": x, "y": y, "h": refused_h, "kind": "refused"})
    return {
        "bars": bars,
        "peak": peak,
        "ok": sum(counts["ok"]),
        "refused": sum(counts["refused"]),
    }


async def counts_now(dash: Dashboard) -> dict[str, dict[str, list[int]]]:
    now = dash.rt.clock.now()
    cache = dash.state.setdefault("activity", ActivityCache())
    async with dash.state.setdefault("activity_lock", asyncio.Lock()):
        return await asyncio.to_thread(cache.counts, dash.rt.audit.audit_dir, now)


async def warm(dash: Dashboard) -> None:
    """Count the past week once at start, so the first visit does not wait for it."""
    await counts_now(dash)


async def activity(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    current_session(request)
    now = dash.rt.clock.now()
    counts = await counts_now(dash)
    days = []
    first_hour = int(now // 3600 - HOURS + 1)
    for slot in range(HOURS):
        hour = first_hour + slot
        if hour % 24 == 0:
            label = datetime.fromtimestamp(hour * 3600, UTC).strftime("%a %d")
            days.append({"x": slot * BAR, "label": label})
    charts = {name: chart(c) for name, c in counts.items()}
    return dash.render(
        request,
        "activity.html",
        charts=charts,
        days=days,
        width=HOURS * BAR,
        height=HEIGHT,
        bar=BAR - 1,
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/activity", activity)
