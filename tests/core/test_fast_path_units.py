"""The fast path's connection handling, in process, with a transport that records."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from airlock.daemon.connections import ConnectionGuard
from airlock.daemon.fast_path import BACKLOG_LIMIT, ConnectionProtocol, FastPath
from airlock.daemon.http import FrontDoor, UidGate
from airlock.security.peers import Peer

CALL = b"POST /v1/ops/mail/count_unread HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"


class Recorder(asyncio.Transport):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.written = b""
        self.closed = False
        self.flow: list[str] = []

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

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.flow.append("pause")

    def resume_reading(self) -> None:
        self.flow.append("resume")


@contextlib.contextmanager
def connected(
    call: Any, *, idle_timeout: float
) -> Iterator[tuple[FastPath, ConnectionProtocol, Recorder, ConnectionGuard]]:
    """A fast path that runs *call*, and one connection on it (a socket pair's end)."""
    guard = ConnectionGuard(per_uid=8, total=8)
    fast = FastPath(FrontDoor(UidGate([], None), guard), call, idle_timeout=idle_timeout)
    ours, theirs = socket.socketpair(socket.AF_UNIX)
    with ours, theirs:
        transport = Recorder(ours)
        protocol = ConnectionProtocol(lambda: asyncio.Protocol(), guard, fast)
        protocol.connection_made(transport)
        yield fast, protocol, transport, guard


async def _serve(call: Any, data: bytes, wait: float) -> Recorder:
    with connected(call, idle_timeout=0.2) as (_fast, protocol, transport, _guard):
        protocol.data_received(data)
        await asyncio.sleep(wait)
        return transport


def test_a_call_whose_error_escapes_the_front_door_does_not_hold_its_connection() -> None:
    """An exception the front door lets through (an HTTP redirect, a failure while it
    answers an error) ends the call's task: the connection must not stay "running"
    forever, out of the idle timeout's reach."""

    async def redirected(_p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    transport = asyncio.run(_serve(redirected, CALL, wait=1.0))
    assert transport.closed, "the connection is held open for good"
    assert transport.written.startswith(b"HTTP/1.1 500 ")


def test_reading_pauses_while_a_call_runs_and_its_backlog_passes_64_kib() -> None:
    """What an agent sends while its call runs waits in the daemon's memory: past 64 KiB
    (aiohttp's own mark) reading pauses, and resumes once the call is answered."""
    release = asyncio.Event()

    async def held(_p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        await release.wait()
        return web.Response(body=b"{}", content_type="application/json")

    async def pipeline() -> tuple[list[str], list[str], list[str], bytes]:
        with connected(held, idle_timeout=60) as (fast, protocol, transport, _guard):
            protocol.data_received(CALL)  # runs until released
            await asyncio.sleep(0)
            for _ in range(64 * 1024 // len(CALL)):
                protocol.data_received(CALL)
            below = list(transport.flow)
            protocol.data_received(CALL * 40)
            above = list(transport.flow)
            release.set()
            await asyncio.sleep(0.05)
            after = list(transport.flow)
            await fast.stop(grace=1)
            return below, above, after, transport.written

    below, above, after, written = asyncio.run(pipeline())
    assert below == []
    assert above == ["pause"]
    assert after[:2] == ["pause", "resume"]  # the backlog answered down under the mark
    assert written.startswith(b"HTTP/1.1 200 ")


READ_SIZE = 256 * 1024
"""The most one read of the event loop hands over."""


def test_a_pipelining_agent_cannot_grow_its_backlog_past_the_mark() -> None:
    """An agent that sends calls as fast as the daemon lets it, reading its answers: the
    calls waiting stay within the mark and one read, however many are answered. Reading
    resumed at every answer, so each (~80 bytes taken out) let a whole read in: 50
    answers held 13 MiB, and a real daemon grew past a GiB in seconds."""
    gate = asyncio.Queue[None]()

    async def held(_p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        await gate.get()
        return web.Response(body=b"{}", content_type="application/json")

    async def flood() -> tuple[int, list[str]]:
        with connected(held, idle_timeout=600) as (fast, protocol, transport, _guard):
            chunk = CALL * (READ_SIZE // len(CALL))
            largest = 0
            for _ in range(50):
                while not transport.flow or transport.flow[-1] != "pause":
                    protocol.data_received(chunk)  # a transport reads until paused
                    largest = max(largest, len(protocol._buffer))
                gate.put_nowait(None)  # the running call answered
                await asyncio.sleep(0.001)
            flow = list(transport.flow)
            for _ in range(len(protocol._buffer) // len(CALL) + 2):
                gate.put_nowait(None)
            await asyncio.sleep(0.2)  # all answered: reading goes on
            flow.append(transport.flow[-1])
            await fast.stop(grace=0.1)
            return largest, flow

    largest, flow = asyncio.run(flood())
    assert largest <= BACKLOG_LIMIT + READ_SIZE
    assert flow[:1] == ["pause"]
    assert flow[-1] == "resume"


def test_a_call_still_running_after_the_grace_is_cancelled_before_the_runtime_stops() -> None:
    """At SIGTERM the calls running get a grace to finish; one still running after it is
    cancelled then (as aiohttp cancels its own), not left to run on a stopped runtime."""
    seen: list[str] = []

    async def endless(_p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return web.Response(body=b"{}")

    async def stop_while_running() -> Recorder:
        with connected(endless, idle_timeout=60) as (fast, protocol, transport, _guard):
            protocol.data_received(CALL)
            await asyncio.sleep(0.01)
            await fast.stop(grace=0.05)
            seen.append("stopped")
            return transport

    transport = asyncio.run(stop_while_running())
    assert seen == ["cancelled", "stopped"]
    assert transport.closed


def test_a_connection_is_busy_from_the_moment_its_call_is_read_until_answered() -> None:
    """The guard sheds idle connections first: one whose call was read but whose task has
    not started yet is not idle, and is idle again once answered."""

    async def quick(_p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        return web.Response(body=b"{}", content_type="application/json")

    async def read_then_answer() -> tuple[int, int]:
        with connected(quick, idle_timeout=60) as (_fast, protocol, transport, guard):
            protocol.data_received(CALL)
            conn = guard.connection(transport)
            assert conn is not None
            read = conn.busy  # its task has not run yet
            await asyncio.sleep(0.05)
            assert transport.written.startswith(b"HTTP/1.1 200 ")
            return read, conn.busy

    assert asyncio.run(read_then_answer()) == (1, 0)


def _holds(value: Any, needle: bytes, depth: int = 0) -> bool:
    """Whether *needle* is in *value* or in what it holds (attributes, slots, items)."""
    if isinstance(value, bytes | bytearray):
        return needle in value
    if isinstance(value, str):
        return needle.decode() in value
    if depth > 3 or value is None or isinstance(value, int | float | asyncio.BaseTransport):
        return False
    inner: list[Any] = []
    if isinstance(value, dict | list | tuple | set):
        inner = list(value.values()) if isinstance(value, dict) else list(value)
    for name in getattr(type(value), "__slots__", ()):
        inner.append(getattr(value, name, None))
    inner += list(getattr(value, "__dict__", {}).values())
    return any(_holds(item, needle, depth + 1) for item in inner)


def test_a_connection_keeps_no_token_once_it_ends_or_moves_to_aiohttp() -> None:
    """The last call's head (its token in it) is remembered to read the next call
    quicker: only while the connection is the fast path's."""
    token = b"alk_" + b"s" * 43
    call = CALL.replace(b"Host: a\r\n", b"Host: a\r\nAuthorization: Bearer " + token + b"\r\n")

    async def quick(_p: Peer, _a: str, _s: str, _o: str, _b: bytes) -> web.Response:
        return web.Response(body=b"{}", content_type="application/json")

    async def run() -> tuple[bool, bool, bool]:
        with connected(quick, idle_timeout=60) as (_fast, protocol, transport, _guard):
            protocol.data_received(call)
            await asyncio.sleep(0.05)
            assert transport.written.startswith(b"HTTP/1.1 200 ")
            while_served = _holds(protocol, token)
            protocol.connection_lost(None)
            after_end = _holds(protocol, token)
        with connected(quick, idle_timeout=60) as (_fast, protocol, transport, _guard):
            protocol.data_received(call)
            await asyncio.sleep(0.05)
            protocol.data_received(b"GET /v1/status HTTP/1.1\r\nHost: a\r\n\r\n")  # aiohttp's
            after_hand_over = _holds(protocol._calls, token)
        return while_served, after_end, after_hand_over

    while_served, after_end, after_hand_over = asyncio.run(run())
    assert while_served  # the check can see it: the memo holds the head
    assert not after_end
    assert not after_hand_over
