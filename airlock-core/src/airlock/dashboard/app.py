"""The dashboard's aiohttp application on its own TCP listener (see docs/dashboard.md).

The daemon starts it after its Unix socket; a dashboard that cannot bind its port is
reported and left off, the daemon itself keeps serving agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from airlock.common.files import atomic_write_private
from airlock.daemon.runtime import Runtime
from airlock.dashboard.address import ListenAddress, parse_listen
from airlock.dashboard.auth import DashboardAuth
from airlock.dashboard.gate import GatedSite
from airlock.dashboard.security import add_headers, current_session, make_guard
from airlock.framework.notifiers import Notice
from airlock.security.prompts import untrusted_line

if TYPE_CHECKING:
    import jinja2

log = structlog.get_logger("airlock.dashboard")

DASHBOARD = web.AppKey("dashboard", object)
URL_FILE = "dashboard.url"


def url_file(runtime: Runtime) -> Path:
    """Where the running daemon writes its dashboard's address, for ``airlock dashboard``."""
    return runtime.paths.run_dir / URL_FILE


class Dashboard:
    """What the handlers share: the runtime, the login state, the templates."""

    def __init__(
        self, runtime: Runtime, address: ListenAddress, allows: Callable[[int], bool]
    ) -> None:
        self.rt = runtime
        self.address = address
        self.allows = allows  # the socket's uid gate (daemon.allowed_uids)
        self.port = address.port
        self.auth = DashboardAuth(runtime, runtime.config.dashboard.session_ttl)
        self.templates = _environment()
        self.state: dict[str, Any] = {}  # background results (audit verification, checks)
        self.closing = asyncio.Event()  # ends the live event streams at shutdown
        self.streams = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self.closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def render(
        self, request: web.Request, name: str, status: int = 200, **ctx: Any
    ) -> web.Response:
        session = request.get("airlock_dashboard_session")
        csrf = self.auth.csrf_token(session.id) if session is not None else ""
        html = self.templates.get_template(name).render(
            request_path=request.path, csrf=csrf, logged_in=session is not None, **ctx
        )
        return web.Response(text=html, status=status, content_type="text/html")


def of(request: web.Request) -> Dashboard:
    found = request.app[DASHBOARD]
    assert isinstance(found, Dashboard)
    return found


def _untrusted(text: object, limit: int = 300) -> str:
    """Agent-controlled text on a page: one line, no control characters (then escaped)."""
    return untrusted_line(str(text), limit) if text is not None else ""


def _environment() -> jinja2.Environment:
    import jinja2  # here, not at import: the CLI never renders a page

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("airlock.dashboard", "templates"),
        autoescape=True,  # every value, in every template, whatever its file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["untrusted"] = _untrusted
    return env


STATIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(js|css|png)$")
STATIC_KINDS = {"js": "text/javascript", "css": "text/css", "png": "image/png"}


async def static(request: web.Request) -> web.StreamResponse:
    """A file of ``static/``; any other name (one too long for the file system, a
    NUL, a path) is a 404 before the file system sees it."""
    found = STATIC_NAME.match(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    resource = files("airlock.dashboard").joinpath("static", found.group(0))
    if not resource.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=resource.read_bytes(), content_type=STATIC_KINDS[found.group(1)])


async def index(request: web.Request) -> web.StreamResponse:
    current_session(request)
    raise web.HTTPSeeOther("/pending")


def build_app(dashboard: Dashboard) -> web.Application:
    from airlock.dashboard import activity, audit_view, pages, services_view

    app = web.Application(
        middlewares=[
            make_guard(
                dashboard.auth,
                port=lambda: dashboard.port,
                remote=dashboard.rt.config.dashboard.allow_remote,
                allows=dashboard.allows,
                state=dashboard.rt.paths.state_db,
                state_failed=lambda method, path: dashboard.rt.audit.append(
                    "state_write_failed", method=method, path=path, channel="dashboard"
                ),
            )
        ],
        client_max_size=64 * 1024,
    )
    app[DASHBOARD] = dashboard
    app.on_response_prepare.append(add_headers)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    for module in (pages, audit_view, activity, services_view):
        module.add_routes(app.router)
    return app


async def _warn_taken(runtime: Runtime, listen: str, then: str = "so the dashboard is off") -> None:
    """Tell every channel: any local user may bind a free loopback port first, and a
    page there that looks like the dashboard's login would collect the person's code."""
    text = (
        f"Airlock: the dashboard's address {listen} is taken by another program, {then}. "
        "A page there is not Airlock's: type no code there."
    )
    await runtime.channels.notify_all(Notice(text=text))


SIBLINGS = {"127.0.0.1": "::1", "::1": "127.0.0.1"}


async def _hold_sibling(
    runtime: Runtime,
    runner: web.AppRunner,
    host: str,
    port: int,
    allows: Callable[[int], bool] | None,
) -> None:
    """``localhost`` names both 127.0.0.1 and ::1, and browsers try ::1 first: the other
    loopback address is served on the same port too, so no other local user can put a
    look-alike login page at ``localhost:PORT`` while the dashboard runs. Taken already:
    every channel is told; not on this machine (no IPv6): nobody can take it either."""
    sibling = SIBLINGS.get(host)
    if sibling is None:
        return
    try:
        await GatedSite(runner, sibling, port, allows).start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.error("dashboard_sibling_taken", address=sibling, port=port)
            where = f"localhost:{port} ({sibling})"
            runtime.in_background(
                _warn_taken(runtime, where, f"so use {host}:{port} for the dashboard")
            )


@dataclass
class Running:
    dashboard: Dashboard
    runner: web.AppRunner
    url: str
    url_file: Path

    async def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.url_file.unlink()
        await self.dashboard.close()
        await self.runner.cleanup()


async def start(runtime: Runtime, allows: Callable[[int], bool]) -> Running | None:
    """Serve the dashboard if ``dashboard.listen`` is not ``off``, to the local users
    *allows* lets in (the socket's uid gate); None when it is off or its port cannot be
    bound (reported, never fatal). A bad setting raises ``ConfigError``."""
    settings = runtime.config.dashboard
    address = parse_listen(settings.listen, allow_remote=settings.allow_remote)
    if address is None:
        return None
    if not address.loopback:
        log.warning("dashboard_remote", listen=settings.listen)
        print(
            f"warning: the dashboard listens on {settings.listen}, beyond this machine "
            "(dashboard.allow_remote); anyone who can reach it may try codes",
            flush=True,
        )
    dashboard = Dashboard(runtime, address, allows)
    runner = web.AppRunner(
        build_app(dashboard), access_log=None, handle_signals=False, shutdown_timeout=2.0
    )
    await runner.setup()
    gate = None if settings.allow_remote else allows
    site = GatedSite(runner, address.host, address.port, gate)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        log.error("dashboard_unavailable", listen=settings.listen, error=exc.strerror)
        print(f"dashboard not started: {settings.listen}: {exc.strerror}", flush=True)
        if exc.errno == errno.EADDRINUSE:
            runtime.in_background(_warn_taken(runtime, settings.listen))
        return None
    server = site._server  # the bound socket tells the port when listen asked for port 0
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        dashboard.port = sockets[0].getsockname()[1]
    await _hold_sibling(runtime, runner, address.host, dashboard.port, gate)
    url = address.url(dashboard.port)
    target = url_file(runtime)
    os.makedirs(target.parent, exist_ok=True)
    atomic_write_private(target, url.encode() + b"\n")
    log.info("dashboard_ready", url=url)
    print(f"dashboard on {url}", flush=True)
    from airlock.dashboard import activity
    from airlock.dashboard.audit_view import run_verify

    dashboard.spawn(run_verify(dashboard))
    dashboard.spawn(activity.warm(dashboard))
    return Running(dashboard, runner, url, target)
