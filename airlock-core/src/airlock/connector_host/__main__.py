"""``python -m airlock.connector_host``: the process that runs connectors.

Two ways to reach it:

* ``--fd N``: the daemon started it as its child (personal mode) and passed one end of a
  socket pair; the host serves that one channel and exits when it closes.
* ``--listen PATH --allow-uid UID``: it runs as its own user (isolated mode,
  ``airlock-connectors``) and serves a Unix socket, answering only processes of *UID*
  (the core's user), as the kernel reports them (SO_PEERCRED).

A watchdog thread ends the process (exit 70) when its event loop has not run for
``connector_host.timeout`` plus 10 seconds: a connector stuck in blocking code must not
leave a host that accepts calls and answers none. Whoever started it starts it again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STALL_EXIT = 70
WATCHDOG_SLACK = 10.0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m airlock.connector_host")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="serve this inherited socket (a child host)")
    where.add_argument("--listen", type=Path, help="serve a Unix socket at this path")
    parser.add_argument("--allow-uid", type=int, help="with --listen: the core's uid")
    parser.add_argument("--data-dir", type=Path, required=True, help="vault and vault key")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="MODULE:CLASS of a plugin registered in code (not by an entry point)",
    )
    parser.add_argument("--no-entry-points", action="store_true")
    parser.add_argument(
        "--hide",
        type=Path,
        action="append",
        default=[],
        help="a path neither the host (but for its --data-dir) nor the programs it starts "
        "may reach (those never reach its vault either)",
    )
    args = parser.parse_args(argv)
    if args.listen is not None and args.allow_uid is None:
        parser.error("--listen needs --allow-uid (the core's uid)")
    return args


def _plugin(spec: str) -> Any:
    module_name, _, qualname = spec.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in filter(None, qualname.split(".")):
        target = getattr(target, part)
    return target() if isinstance(target, type) else target


class Watchdog:
    """Ends the process when the event loop stops turning (see the module docstring)."""

    def __init__(self, limit: Callable[[], float]) -> None:
        self.limit = limit
        self.beat = time.monotonic()

    async def heartbeat(self) -> None:
        while True:
            self.beat = time.monotonic()
            await asyncio.sleep(1.0)

    def watch(self) -> None:
        while True:
            time.sleep(1.0)
            stalled = time.monotonic() - self.beat
            if stalled > self.limit():
                sys.stderr.write(
                    f'{{"event": "connector_host_stalled", "seconds": {stalled:.0f}}}\n'
                )
                sys.stderr.flush()
                os._exit(STALL_EXIT)


async def _serve(args: argparse.Namespace) -> None:
    from airlock.common.logs import get_logger
    from airlock.connector_host import confine
    from airlock.connector_host.keys import HostKeys
    from airlock.connector_host.server import HostServer
    from airlock.framework.plugins import get_connectors, get_plugin_manager
    from airlock.security.peers import peer_of

    pm = get_plugin_manager(
        load_entry_points=not args.no_entry_points,
        extra_plugins=[_plugin(spec) for spec in args.plugin],
    )
    keys = HostKeys(args.data_dir)
    confine.HIDDEN[:] = [*args.hide, *keys.secret_files()]
    unconfined = confine.confine_host(args.hide, args.data_dir)
    if unconfined is not None:
        get_logger("airlock.connector_host").warning("host_unconfined", reason=unconfined)
    server = HostServer(get_connectors(pm), keys)
    watchdog = Watchdog(lambda: server.timeout + WATCHDOG_SLACK)
    beating = asyncio.create_task(watchdog.heartbeat())
    threading.Thread(target=watchdog.watch, name="watchdog", daemon=True).start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if args.fd is not None:
            sock = socket.socket(fileno=args.fd)
            reader, writer = await asyncio.open_unix_connection(sock=sock)
            serving = asyncio.create_task(server.serve(reader, writer))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            serving.cancel()
            stopping.cancel()
        else:

            async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                sock = writer.get_extra_info("socket")
                if sock is None or peer_of(sock).uid != args.allow_uid:
                    writer.close()
                    return
                await server.serve(reader, writer)

            with contextlib.suppress(FileNotFoundError):
                args.listen.unlink()
            old = os.umask(0o117)
            try:
                unix = await asyncio.start_unix_server(accept, path=str(args.listen))
            finally:
                os.umask(old)
            async with unix:
                await stop.wait()
    finally:
        beating.cancel()
        await server.pool.close_all()


def main(argv: list[str] | None = None) -> int:
    from airlock.common.logs import configure_logging
    from airlock.common.loop import run_loop
    from airlock.ptrace import refuse_ptrace

    # Before the vault opens: no process of this user (a `command` server of the MCP
    # proxy, which the host starts as its own user) may read the host's memory.
    refuse_ptrace()
    args = _arguments(argv)
    configure_logging(json=True)
    run_loop(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
