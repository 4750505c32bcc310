"""Operations per hour per service over the last 7 days, drawn as server-side SVG."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from airlock.audit import query
from airlock.dashboard.app import Dashboard, of
from airlock.dashboard.security import current_session

HOURS = 7 * 24
BAR = 4  # px per hour
HEIGHT = 60
EVENTS = ("operation", "operation_denied")


def _hour(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() // 3600


def count(dash: Dashboard, now: float) -> dict[str, dict[str, list[int]]]:
    """Per service: ``ok`` and ``refused`` counts for each of the last 168 hours."""
    first_hour = now // 3600 - HOURS + 1
    records = query(
        dash.rt.audit.audit_dir,
        since=first_hour * 3600,
        match=lambda r: r.get("event") in EVENTS,
    )
    out: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {"ok": [0] * HOURS, "refused": [0] * HOURS}
    )
    for record in records:
        service = record.get("service")
        if not isinstance(service, str):
            continue
        slot = int(_hour(str(record.get("ts", ""))) - first_hour)
        if not 0 <= slot < HOURS:
            continue
        refused = record["event"] == "operation_denied" or record.get("outcome") == "error"
        out[service]["refused" if refused else "ok"][slot] += 1
    return dict(sorted(out.items()))


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


async def activity(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    current_session(request)
    now = dash.rt.clock.now()
    counts = await asyncio.to_thread(count, dash, now)
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
