"""The fast path's connection handling, in process, with a transport that records."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import web

from airlock.daemon.connections import ConnectionGuard
from airlock.daemon.fast_path import ConnectionProtocol, FastPath
from airlock.daemon.http import FrontDoor, UidGate
from airlock.security.peers import Peer

CALL = b"POST /v1/ops/mail/count_unread HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"


class Recorder(asyncio.Transport):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _serve(call: Any, data: bytes, wait: float) -> Recorder:
    guard = ConnectionGuard(per_uid=8, total=8)
    door = FrontDoor(UidGate([], None), guard)
    fast = FastPath(door, call, idle_timeout=0.2)
    ours, theirs = socket.socketpair(socket.AF_UNIX)
    try:
        transport = Recorder(ours)
        protocol = ConnectionProtocol(lambda: asyncio.Protocol(), guard, fast)
        protocol.connection_made(transport)
        protocol.data_received(data)
        await asyncio.sleep(wait)
        return transport
    finally:
        ours.close()
        theirs.close()


def test_a_call_whose_error_escapes_the_front_door_does_not_hold_its_connection() -> None:
    """An exception the front door lets through (an HTTP redirect, a failure while it
    answers an error) ends the call's task: the connection must not stay "running"
    forever, out of the idle timeout's reach."""

    async def redirected(_p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    transport = asyncio.run(_serve(redirected, CALL, wait=1.0))
    assert transport.closed, "the connection is held open for good"
    assert transport.written.startswith(b"HTTP/1.1 500 ")


def test_bytes_trickling_in_behind_a_running_call_cost_no_copy_of_the_backlog() -> None:
    """While a call runs, what the agent sends waits in the buffer (up to ~1 MiB). A byte
    at a time must not copy that backlog each time: 4,000 one-byte reads behind a 1 MiB
    backlog were 4 GB of copying on the event loop."""
    import time

    async def slow(_p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(body=b"{}")

    async def trickle() -> float:
        guard = ConnectionGuard(per_uid=8, total=8)
        fast = FastPath(FrontDoor(UidGate([], None), guard), slow, idle_timeout=60)
        ours, theirs = socket.socketpair(socket.AF_UNIX)
        with ours, theirs:
            protocol = ConnectionProtocol(lambda: asyncio.Protocol(), guard, fast)
            protocol.connection_made(Recorder(ours))
            protocol.data_received(CALL)  # runs now, for 30 s
            await asyncio.sleep(0)
            protocol.data_received(CALL * (1024 * 1024 // len(CALL)))
            started = time.process_time()
            for _ in range(4000):
                protocol.data_received(b" ")
            took = time.process_time() - started
            await fast.stop(grace=0)
            return took

    assert asyncio.run(trickle()) < 0.1
