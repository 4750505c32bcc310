"""An aiohttp app served on 127.0.0.1 (random port) from a thread with its own event loop.

The messengers' stand-ins run this way so any test can drive them: an in-process runtime
on its own loop, a daemon in another process, a CLI command in a subprocess. ``stop()``
and ``start()`` take the server down and bring it back on the same port, so a notifier
sees a real outage (connection refused) and a real recovery.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class ThreadedServer:
    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self.make_app = make_app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run *coro* on the server's loop (where its state lives) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        async def up() -> int:
            self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await site.start()
            server = site._server
            assert server is not None
            sockets = getattr(server, "sockets", None) or []
            return int(sockets[0].getsockname()[1])

        self.port = self.call(up())

    def stop(self) -> None:
        """Close the port: clients see connection refused until :meth:`start`."""

        async def down() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None

        self.call(down())

    def close(self) -> None:
        self.stop()

        async def cancel_the_rest() -> None:  # e.g. a long poll still waiting
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
