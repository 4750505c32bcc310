"""Which connections reach the dashboard's HTTP server at all.

The uid gate in ``security.guard`` runs once a request's head has arrived, so a local
user it refuses could still hold connections open with half a head: 1,200 of them took
every file descriptor the daemon had, and with them its socket for agents and the CLI.
Here a connection from a user the gate refuses, or whom the kernel does not name, is
closed as it is accepted, before aiohttp reads a byte; and at most ``MAX_CONNECTIONS``
are open at once (the rest closed as they come), whoever holds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from aiohttp import web

from airlock.common.logs import get_logger
from airlock.dashboard.peer_uid import HUNG_UP, transport_uid
from airlock.dashboard.security import refused_text

__all__ = ["MAX_CONNECTIONS", "GatedSite"]

log = get_logger("airlock.dashboard")

MAX_CONNECTIONS = 128
"""Open dashboard connections in all: a browser opens a handful to one host."""


class _Count:
    def __init__(self) -> None:
        self.open = 0


def _refused(uid: int) -> bytes:
    """The answer a refused user gets (as the guard would give it), then the close."""
    text = f"{refused_text(uid)}\n".encode()
    head = (
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + text


class _Gate(asyncio.Protocol):
    """One accepted connection: aiohttp's once admitted, closed at once otherwise."""

    def __init__(
        self,
        make_inner: Callable[[], asyncio.Protocol],
        allows: Callable[[int], bool] | None,
        count: _Count,
    ) -> None:
        self._make_inner = make_inner
        self._allows = allows
        self._count = count
        self._inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._count.open >= MAX_CONNECTIONS:
            log.warning("dashboard_connections_full", open=self._count.open)
            cast(asyncio.Transport, transport).abort()
            return
        if self._allows is not None:
            uid = transport_uid(transport)
            if uid is None or uid == HUNG_UP:  # gone, or the kernel's table unreadable
                log.warning("dashboard_uid_unknown")
                cast(asyncio.Transport, transport).abort()
                return
            if not self._allows(uid):
                log.warning("dashboard_uid_refused", uid=uid)
                cast(asyncio.Transport, transport).write(_refused(uid))  # fits the buffer
                cast(asyncio.Transport, transport).close()
                return
        self._count.open += 1
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._count.open -= 1
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GatedSite(web.TCPSite):
    """``web.TCPSite`` whose connections pass :class:`_Gate` first. *allows*: the uid
    gate, or None for a dashboard opened to other machines (``allow_remote``), whose
    clients the kernel does not name."""

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, allows: Callable[[int], bool] | None
    ) -> None:
        super().__init__(runner, host, port)
        self._allows = allows

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; TCPSite.start would listen
        server = self._runner.server
        assert server is not None
        allows, count = self._allows, _Count()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Gate(server, allows, count),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
