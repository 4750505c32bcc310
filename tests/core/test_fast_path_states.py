"""The fast path's connection states against a hostile client, on real transports:
answers it does not read, half-closes, shedding, hand-over while paused."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from aiohttp import web

from airlock.daemon.connections import ConnectionGuard
from airlock.daemon.fast_path import ConnectionProtocol, FastPath
from airlock.daemon.http import FrontDoor, UidGate
from airlock.security.peers import Peer

CALL = b"POST /v1/ops/mail/count_unread HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"
CLOSING = CALL.replace(b"Host: a\r\n", b"Host: a\r\nConnection: close\r\n")
BIG = b"x" * (4 * 1024 * 1024)
"""An answer no socket buffer holds: writing pauses while the client does not read."""

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def _uvloop_run(main: Coroutine[Any, Any, Any]) -> Any:
    uvloop = pytest.importorskip("uvloop")
    return uvloop.run(main)


LOOPS = pytest.mark.parametrize("run", [asyncio.run, _uvloop_run], ids=["asyncio", "uvloop"])
"""The daemon runs on uvloop where it is installed: its transports must behave alike."""

Op = Callable[[Peer, str, str, str, bytes], Awaitable[web.Response]]


class Counted:
    def __init__(self, body: bytes = b"{}") -> None:
        self.calls = 0
        self.body = body

    async def __call__(self, _p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        self.calls += 1
        return web.Response(body=self.body, content_type="application/json")


async def _connect(
    op: Op, *, idle: float = 0.2, guard: ConnectionGuard | None = None
) -> tuple[socket.socket, ConnectionGuard, FastPath, ConnectionProtocol]:
    guard = guard if guard is not None else ConnectionGuard(per_uid=8, total=8)
    fast = FastPath(FrontDoor(UidGate([], None), guard), op, idle_timeout=idle)
    ours, theirs = socket.socketpair(socket.AF_UNIX)
    theirs.setblocking(False)
    protocol = ConnectionProtocol(lambda: asyncio.Protocol(), guard, fast)
    await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, ours)
    return theirs, guard, fast, protocol


async def _read_all(sock: socket.socket) -> bytes:
    """What the daemon sent, until it closed the connection (or reset it)."""
    loop = asyncio.get_running_loop()
    got = bytearray()
    while True:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 5)
        except (ConnectionResetError, TimeoutError):
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk


@LOOPS
@pytest.mark.parametrize("request_", [CALL, CLOSING], ids=["keep-alive", "close"])
def test_a_client_that_never_reads_its_answer_loses_the_connection_at_the_idle_timeout(
    run: Run, request_: bytes
) -> None:
    """The idle timeout must end a connection whose answer sits unread: ``close()``
    waits for the buffer to drain, which a client that never reads never lets happen,
    so the connection (its descriptor, its buffered answer) stayed for good."""

    async def scenario() -> int:
        client, guard, _fast, _p = await _connect(Counted(BIG))
        with client:
            client.send(request_)
            await asyncio.sleep(1.0)  # five idle timeouts, and the client read nothing
            return len(guard)

    assert run(scenario()) == 0, "the connection outlived its idle timeout"


@LOOPS
def test_no_call_runs_on_a_connection_the_idle_timeout_closed(run: Run) -> None:
    """A call waiting behind an unread answer when the idle timeout closes the
    connection must not run later, when the client drains the answer: the daemon
    closed that connection, and its answer could go nowhere."""

    async def scenario() -> tuple[int, bool]:
        op = Counted(BIG)
        client, _guard, _fast, _p = await _connect(op)
        with client:
            client.send(CALL + CALL)
            await asyncio.sleep(1.0)
            got = await _read_all(client)
        await asyncio.sleep(0.1)
        return op.calls, got.startswith(b"HTTP/1.1 200 ")

    calls, _answered = run(scenario())
    assert calls == 1, "the second call ran on a connection closed for idleness"
