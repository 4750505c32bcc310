"""Operation calls answered without aiohttp's request machinery: the daemon's hot path.

Nearly everything an agent sends is ``POST /v1/ops/{service}/{operation}``, and for
that one request aiohttp's per-request machinery (a task, request and response objects,
a stream reader and writer, keep-alive bookkeeping) cost the event loop about as much as
the call's own work. So every connection on the socket starts here. A request this
module finds whole and in its strict form (``call_wire``) is answered here, by the code
the aiohttp route runs (``operation_calls.operation_call`` behind
``http.FrontDoor.answer``). A head still arriving waits here. At the first request that
is anything else once its head is here (another route, a body not all arrived yet, a
header this parser does not take) the connection, with every byte of it not yet
answered, goes to aiohttp for the rest of its life. So this parser never has to be right
about a request it does not take: aiohttp reads that request whole, as if it had had
the connection from the start.

One request runs at a time on a connection, and answers go out in order. While one runs,
what the agent sends next waits (reading pauses past 64 KiB), as it does while the agent
is not reading its answers. A connection with no request running for
``daemon.idle_timeout`` seconds is closed, as aiohttp closes its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web

from airlock.common.logs import get_logger
from airlock.daemon.call_wire import (
    HEAD_LIMIT,
    Call,
    CallReader,
    encode_json,
    encode_response,
)
from airlock.daemon.connections import Connection, ConnectionGuard
from airlock.daemon.http import FrontDoor, internal_error
from airlock.security.peers import Peer

__all__ = ["DaemonSite", "FastPath", "OperationCall"]

log = get_logger("airlock.daemon")

BACKLOG_LIMIT = 64 * 1024
"""Bytes kept of what an agent sends while its call runs or its answers are not read,
before reading pauses (aiohttp's own high-water mark): one connection cannot hold
more of the daemon's memory. A request longer than this goes to aiohttp whole."""

OperationCall = Callable[[Peer, str, str, str, bytes], Awaitable[bytes]]
"""(caller, Authorization header, service, operation, body) to the route's answer's body
(its errors raised, as the route's)."""


class FastPath:
    """The connections the fast path still holds, and the calls it runs."""

    def __init__(self, door: FrontDoor, call: OperationCall, *, idle_timeout: float) -> None:
        self._door = door
        self._call = call
        self.idle_timeout = idle_timeout
        self.stopping = False
        self._held: set[ConnectionProtocol] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def hold(self, protocol: ConnectionProtocol) -> None:
        self._held.add(protocol)

    def release(self, protocol: ConnectionProtocol) -> None:
        self._held.discard(protocol)

    def start(self, protocol: ConnectionProtocol, conn: Connection, call: Call) -> None:
        # Busy from now until its answer is handed back, not only while the front door
        # runs it: the guard sheds an idle connection before one whose call is on its way.
        conn.busy += 1
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(self._answer(protocol, conn, call))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(self, protocol: ConnectionProtocol, conn: Connection, call: Call) -> None:
        caller = conn.peer
        assert caller is not None  # connections without one are aiohttp's

        async def run() -> bytes:
            self._door.let_in(caller)
            return await self._call(
                caller, call.authorization, call.service, call.operation, call.body
            )

        path = f"/v1/ops/{call.service}/{call.operation}"
        try:
            response = await self._door.answer(conn, "POST", path, run)
            close = call.close or self.stopping
            if isinstance(response, bytes):
                answer = encode_json(response, close=close)
            else:
                answer = encode_response(response, close=close)
        except Exception as exc:  # past the door (a redirect, its own error handling
            # failing): a 500 that closes, never a connection left "running" for good
            log.error("unhandled_error", path=path, error=type(exc).__name__)
            close = True
            answer = encode_response(internal_error(), close=True)
        finally:
            conn.busy -= 1
        protocol.answered(answer, close=close)

    async def stop(self, grace: float) -> None:
        """Take no more calls, let those running finish (for at most *grace* seconds;
        those still running then are cancelled, as aiohttp cancels its own, before the
        runtime under them stops), then close the connections still held here."""
        self.stopping = True
        if self._running:
            _done, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for protocol in list(self._held):
            protocol.close()


class ConnectionProtocol(asyncio.Protocol):
    """One connection on the daemon's socket: registered with the guard; its operation
    calls answered by the fast path until its first request that is not one, then by
    aiohttp's handler (*make_inner*)."""

    def __init__(
        self,
        make_inner: Callable[[], asyncio.Protocol],
        guard: ConnectionGuard,
        fast: FastPath,
    ) -> None:
        self._make_inner = make_inner
        self._guard = guard
        self._fast = fast
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._conn: Connection | None = None
        # A bytearray: bytes added at its end and taken from its start cost no copy of
        # the rest (a bytes buffer copied the whole backlog at every read and every call).
        self._buffer = bytearray()
        self._calls = CallReader()
        self._running = False
        self._closed = False
        self._eof = False
        self._writing_paused = False
        self._reading_paused = False
        self._idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        conn = self._guard.admit(transport)
        if conn is None:
            return
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport, self._conn = cast(asyncio.Transport, transport), conn
        fast = self._fast
        if fast.stopping:
            # The daemon stops: no new connection is served (handed to aiohttp, it was,
            # while the calls running finished).
            self._transport.close()
            return
        if conn.peer is None:  # aiohttp's, whose front door refuses it
            self._hand_over()
            return
        fast.hold(self)
        self._idle_since = time.monotonic()
        self._arm_timer(fast.idle_timeout)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
            return
        if self._transport is None or self._closed:
            return
        self._buffer += data
        if len(self._buffer) > BACKLOG_LIMIT and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()
        if not self._running and not self._writing_paused:
            self._serve_next()

    def _serve_next(self) -> None:
        assert self._transport is not None
        assert self._conn is not None
        if not self._buffer:
            if self._eof:
                self._transport.close()
            return
        if self._fast.stopping:
            self._transport.close()
            return
        if self._transport.is_closing():  # closed here (idle): nothing more runs on it
            return
        call = self._calls.read(self._buffer)
        if call is None and self._head_arriving():
            return
        if call is None or (call.close and len(self._buffer) > call.size):
            # Bytes after a request that closes the connection: aiohttp refuses them all.
            self._hand_over()
            return
        del self._buffer[: call.size]
        self._running = True
        self._fast.start(self, self._conn, call)

    def _head_arriving(self) -> bool:
        """Whether the buffer holds a head not yet ended, the connection still open to
        end it: that waits here, under this connection's idle timer (handed over now, it
        would start aiohttp's afresh: twice the timeout for a slow head)."""
        buffer = self._buffer
        return not self._eof and len(buffer) < HEAD_LIMIT and b"\r\n\r\n" not in buffer

    def answered(self, answer: bytes, *, close: bool) -> None:
        """The running call's answer: written, then the next call, if one is here."""
        self._running = False
        transport = self._transport
        if transport is None or self._closed or transport.is_closing():
            return
        transport.write(answer)
        if close:
            self._buffer.clear()
            transport.close()
            return
        self._idle_since = time.monotonic()
        if not self._writing_paused:
            self._serve_next()
        self._read_more()

    def _read_more(self) -> None:
        """Reading paused for the backlog resumes once it is back under the limit: not
        at every answer, which let one more read in for each (~150 bytes taken out, up
        to 256 KiB let in: a pipelining agent grew it without bound)."""
        transport = self._transport
        if (
            self._reading_paused
            and len(self._buffer) <= BACKLOG_LIMIT
            and self._inner is None  # handed over: aiohttp's to pause and resume
            and transport is not None
            and not transport.is_closing()
        ):
            self._reading_paused = False
            transport.resume_reading()

    def _hand_over(self) -> None:
        """aiohttp's from now on, with what has arrived and is not answered."""
        assert self._transport is not None
        if self._timer is not None:
            self._timer.cancel()
        self._fast.release(self)
        self._calls = CallReader()  # its last head (a token in it) is not kept for aiohttp's
        pending, self._buffer = bytes(self._buffer), bytearray()
        inner = self._inner = self._make_inner()
        inner.connection_made(self._transport)
        if self._reading_paused:
            self._reading_paused = False
            self._transport.resume_reading()
        if self._writing_paused:
            inner.pause_writing()
        if pending:
            inner.data_received(pending)
        if self._eof and not inner.eof_received():
            self._transport.close()

    def close(self) -> None:
        """The daemon stops: close a connection still held here."""
        if self._transport is not None and self._inner is None:
            self._transport.close()

    def _arm_timer(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0.0, self._idle_since + timeout - time.monotonic())
        self._timer = loop.call_at(due, self._idle_check, timeout)

    def _idle_check(self, timeout: float) -> None:
        if self._inner is not None or self._closed or self._transport is None:
            return
        if self._running:
            self._idle_since = time.monotonic()
        elif time.monotonic() - self._idle_since >= timeout:
            # An answer still unread after all this time is dropped: close() would wait
            # for a client that never reads, and keep the connection for good.
            if self._transport.get_write_buffer_size():
                self._transport.abort()
            else:
                self._transport.close()
            return
        self._arm_timer(timeout)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        self._eof = True
        if self._buffer and not self._running and not self._writing_paused:
            self._serve_next()  # a head cut short by the end: aiohttp's to answer
            return True
        # Kept open for the answer to a call running or waiting; closed after it.
        return True if self._running or self._buffer else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return
        self._guard.forget(self._transport)
        if self._inner is not None:
            self._inner.connection_lost(exc)
            return
        self._closed = True
        self._calls = CallReader()
        if self._timer is not None:
            self._timer.cancel()
        self._fast.release(self)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()
        else:
            self._writing_paused = True

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
            return
        self._writing_paused = False
        self._idle_since = time.monotonic()  # the client reads: not idle
        if not self._running and self._transport is not None and not self._closed:
            self._serve_next()
            self._read_more()


class DaemonSite(web.UnixSite):
    """``web.UnixSite`` whose connections pass through a :class:`ConnectionGuard` and
    start on the fast path."""

    def __init__(
        self, runner: web.AppRunner, path: str, guard: ConnectionGuard, fast: FastPath
    ) -> None:
        super().__init__(runner, path)
        self._guard = guard
        self._fast = fast

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; UnixSite.start would listen
        server = self._runner.server
        assert server is not None
        guard, fast = self._guard, self._fast
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            lambda: ConnectionProtocol(server, guard, fast), self._path, backlog=self._backlog
        )
