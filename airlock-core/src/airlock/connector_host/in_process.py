"""The connector host's code on the core's own event loop, over a socket pair.

The same protocol and the same :class:`~.server.HostServer` as a host process, without
the process: for tests whose connectors share state with the test (an in-memory notes
store), and for benchmarks that measure the gateway without a second process. A daemon
never uses it: ``airlock serve`` always runs its connectors in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from pathlib import Path

from airlock.connector_host.keys import HostKeys
from airlock.connector_host.link import Streams
from airlock.connector_host.server import HostServer
from airlock.framework.connectors import Connector

__all__ = ["InProcessHost"]


class InProcessHost:
    def __init__(self, connectors: Mapping[str, type[Connector]], data_dir: Path) -> None:
        self.connectors = connectors
        self.data_dir = data_dir
        self.server: HostServer | None = None
        self._serving: asyncio.Task[None] | None = None

    async def connect(self) -> Streams:
        await self.restart()
        self.server = HostServer(self.connectors, HostKeys(self.data_dir))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        reader, writer = await asyncio.open_unix_connection(sock=theirs)
        self._serving = asyncio.create_task(self.server.serve(reader, writer))
        return await asyncio.open_unix_connection(sock=ours)

    async def restart(self) -> None:
        """Stop serving (as a killed host would) and close its connectors."""
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.cancel()
            with contextlib.suppress(BaseException):
                await serving
        if self.server is not None:
            await self.server.pool.close_all()
            self.server = None

    async def close(self) -> None:
        await self.restart()
