"""Services, notifiers and the lockout: is everything able to work?"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from airlock.common.logs import get_logger
from airlock.dashboard.app import Dashboard, of
from airlock.dashboard.security import check_csrf, current_session
from airlock.security.audit import query

log = get_logger("airlock.dashboard")
ERROR_LOOKBACK = 7 * 24 * 3600


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def check_one(dash: Dashboard, name: str) -> dict[str, Any]:
    """``check()`` on a fresh connector with the stored credentials (never the values)."""
    try:
        result = await dash.rt.gateway.host.check(name)
        summary = str(result.get("summary", ""))[:200]
        return {"ok": bool(result.get("ok")), "summary": summary, "at": _now_text()}
    except Exception as exc:  # a failed check is what the page reports
        detail = getattr(exc, "message", "") or type(exc).__name__
        return {"ok": False, "summary": str(detail)[:200], "at": _now_text()}


async def check_all(dash: Dashboard) -> None:
    names = sorted(dash.rt.services)
    results = await asyncio.gather(*(check_one(dash, n) for n in names))
    dash.state["checks"] = dict(zip(names, results, strict=True))


def last_errors(dash: Dashboard, now: float) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    records = query(
        dash.rt.audit.audit_dir,
        since=now - ERROR_LOOKBACK,
        event="operation",
        newest_first=True,
        match=lambda r: r.get("outcome") == "error" and r.get("service") not in found,
        limit=len(dash.rt.services) or 1,
    )
    for record in records:
        found.setdefault(str(record.get("service")), record)
    return found


async def services(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    current_session(request)
    rt = dash.rt
    rt.refresh_totp()
    try:
        stored = await rt.credentials.stored_fields()
    except Exception as exc:  # the page still shows what it can
        log.warning("dashboard_stored_credentials_failed", error=type(exc).__name__)
        stored = {}
    errors = await asyncio.to_thread(last_errors, dash, rt.clock.now())
    checks = dash.state.get("checks", {})
    refused = rt.gateway.auth_problems  # credentials the service itself turned down
    rows = []
    for name, svc in sorted(rt.services.items()):
        fields = stored.get(name, [])
        error = errors.get(name)
        rows.append(
            {
                "name": name,
                "connector": svc.connector.name,
                "title": svc.connector.title,
                "needs": sorted(svc.connector.credentials_model(svc.settings).model_fields),
                "credentials": fields,
                "check": checks.get(name),
                "refused": refused.get(name, ""),
                "error": f"{error.get('ts')}: {error.get('op')}: {error.get('error')}"
                if error
                else "",
            }
        )
    lock = rt.verifier.lock_state()
    return dash.render(
        request,
        "services.html",
        rows=rows,
        notifiers=rt.channels.health(),
        lock={
            "locked": lock.locked,
            "until": datetime.fromtimestamp(lock.locked_until, UTC).strftime("%H:%M:%S UTC")
            if lock.locked_until
            else "",
            "failures": lock.recent_failures,
            "left": lock.attempts_left,
        },
        enrolled=rt.verifier.enrolled,
        checking=dash.state.get("checking", False),
    )


async def run_checks(request: web.Request) -> web.StreamResponse:
    dash = of(request)
    await check_csrf(request, dash.auth)
    await check_all(dash)
    raise web.HTTPSeeOther("/services")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/services", services)
    router.add_post("/services/check", run_checks)
