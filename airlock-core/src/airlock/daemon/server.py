"""``airlock serve``: bind the socket, run until SIGTERM/SIGINT, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import grp
import os
import signal
from pathlib import Path

from aiohttp import web

from airlock.common.clock import Clock
from airlock.common.files import ensure_private_dir
from airlock.common.logs import get_logger
from airlock.connector_host.link import HostLauncher
from airlock.daemon.connections import ConnectionGuard, connection_budget
from airlock.daemon.fast_path import DaemonSite, FastPath
from airlock.daemon.http import BODY_LIMIT, BODY_TIMEOUT, FrontDoor, UidGate
from airlock.daemon.openai_routes import OPENAI_ROUTES
from airlock.daemon.operation_calls import operation_result
from airlock.daemon.routes import ROUTE_TABLE, ROUTES, RUNTIME
from airlock.daemon.runtime import Runtime
from airlock.errors import AirlockError, AlreadyRunning
from airlock.framework.plugins import AirlockPluginManager
from airlock.ptrace import refuse_ptrace
from airlock.settings.paths import AirlockPaths, Mode

log = get_logger("airlock.daemon")

SHUTDOWN_TIMEOUT = 10.0
"""Seconds the operation calls running when the daemon stops get to finish."""


def build_web_app(runtime: Runtime) -> web.Application:
    """The API's app; served only behind ``FrontDoor.around`` (see :func:`serve`)."""
    app = web.Application(client_max_size=BODY_LIMIT)
    app[RUNTIME] = runtime
    app[BODY_TIMEOUT] = float(runtime.config.daemon.idle_timeout)
    # One table serves and is described: GET /v1/openapi.json documents exactly these.
    app[ROUTE_TABLE] = table = ROUTES + OPENAI_ROUTES
    for route in table:
        app.router.add_route(route.method, route.path, route.handler)
    return app


@contextlib.contextmanager
def single_instance(lock_file: Path):  # type: ignore[no-untyped-def]
    """Hold an exclusive lock on the data directory's lock file for the daemon's life."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f"another airlock daemon is already using {lock_file.parent}",
                hint="stop it first, or use another AIRLOCK_HOME",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


async def serve(
    paths: AirlockPaths,
    pm: AirlockPluginManager,
    *,
    ready: asyncio.Event | None = None,
    clock: Clock | None = None,
    host: HostLauncher | None = None,
) -> None:
    # Before any secret is read: no process of this user may read the daemon's memory.
    refuse_ptrace()
    with single_instance(_lock_path(paths)):
        runtime = Runtime(paths, pm, clock=clock, host=host)
        ensure_private_dir(
            paths.socket.parent
        ) if paths.mode is Mode.PERSONAL else paths.socket.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            paths.socket.unlink()
        gate = UidGate(runtime.config.daemon.allowed_uids, _socket_gid(paths))
        settings = runtime.config.daemon
        guard = ConnectionGuard(per_uid=settings.max_connections_per_uid, total=connection_budget())
        app = build_web_app(runtime)
        # aiohttp's keep-alive timer starts when a connection is accepted: it also ends
        # connections that never finish their headers.
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, keepalive_timeout=settings.idle_timeout
        )
        await runner.setup()
        # The uid gate and the JSON errors wrap the app's handler once, for every request
        # (an unknown path's too), instead of a middleware aiohttp would run per request.
        assert runner.server is not None
        door = FrontDoor(
            gate,
            guard,
            state=paths.state_db,
            state_failed=lambda method, path: runtime.audit.append(
                "state_write_failed", method=method, path=path
            ),
        )
        runner.server.request_handler = door.around(runner.server.request_handler)
        # An agent's operation calls skip aiohttp's request machinery (see fast_path).
        fast = FastPath(
            door, functools.partial(operation_result, runtime), idle_timeout=settings.idle_timeout
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runtime.on_reload.append(lambda config: gate.set_allowed(config.daemon.allowed_uids))
        reloads: set[asyncio.Task[None]] = set()

        def hangup() -> None:
            task = loop.create_task(_reload_logged(runtime))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, hangup)
        # Started before the socket opens: no agent is served before the start's audit
        # record and cut check, the budgets a stop cut off, the credentials moved.
        await runtime.start()
        site = DaemonSite(runner, str(paths.socket), guard, fast)
        # Created with its final mode (no window): 0600 for the person alone, 0660 in
        # isolated mode, where the socket's group is who may connect.
        old_umask = os.umask(0o177 if paths.mode is Mode.PERSONAL else 0o117)
        try:
            await site.start()
        finally:
            os.umask(old_umask)
        _hand_socket_to_group(paths, gate.socket_gid)
        from airlock.dashboard.app import start as start_dashboard

        dashboard = await start_dashboard(runtime, gate.allows)
        log.info("daemon_ready", socket=str(paths.socket), pid=os.getpid(), mode=paths.mode.value)
        print(f"airlock daemon listening on {paths.socket} (pid {os.getpid()})", flush=True)
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
        finally:
            log.info("daemon_stopping")
            if dashboard is not None:
                await dashboard.stop()
            # The socket stops taking connections; the calls running on either path
            # finish and their answers go out; then every connection ends.
            await asyncio.gather(fast.stop(grace=SHUTDOWN_TIMEOUT), runner.cleanup())
            await runtime.stop()
            with contextlib.suppress(FileNotFoundError):
                paths.socket.unlink()


async def _reload_logged(runtime: Runtime) -> None:
    """SIGHUP: reload; a config that does not load is logged and the old one kept."""
    try:
        await runtime.reload()
    except AirlockError as exc:
        log.error("reload_refused", error=exc.message)
        print(f"reload refused, the previous config stays in use: {exc.message}", flush=True)


def _lock_path(paths: AirlockPaths) -> Path:
    paths.ensure_data_dirs()
    return paths.lock_file


def _socket_gid(paths: AirlockPaths) -> int | None:
    """Isolated mode: the group whose members may connect (``airlock-agents``)."""
    if paths.mode is not Mode.ISOLATED:
        return None
    from airlock.service.layout import AGENTS_GROUP

    try:
        return grp.getgrnam(AGENTS_GROUP).gr_gid
    except KeyError:
        return os.getgid()


def _hand_socket_to_group(paths: AirlockPaths, gid: int | None) -> None:
    """Give the socket (0660) and its directory (0750) to the agents' group: the daemon
    belongs to it, so it may. If that fails, agents cannot connect: nothing opens up."""
    if gid is None or gid == os.getgid():
        return
    try:
        for path in (paths.socket.parent, paths.socket):
            if path.stat().st_uid == os.geteuid():
                os.chown(path, -1, gid)
    except OSError as exc:
        log.error("socket_group_failed", gid=gid, error=exc.strerror)
