"""The MCP server's stdin and stdout on the event loop's own pipe transports.

The SDK's ``stdio_server()`` reads each line and writes (then flushes) each answer in a
worker thread (``anyio.wrap_file``): three thread hops a tool call, ~0.5 ms of the
server's CPU and more of its latency on a busy machine (benchmarks/gateway.py, the MCP
part). When stdin and stdout are pipes or sockets, as when an MCP client starts the
server, they are read and written here without threads and handed to ``stdio_server``
as its streams; otherwise (a terminal, a file) the SDK's own way is used.

Given streams, the SDK leaves file descriptors 0 and 1 alone, so this does what its claim
does: the wire is served from private duplicates while fd 0 reads /dev/null and fd 1
writes to stderr (a stray ``print`` or a child process can neither corrupt nor read the
wire), and both are put back on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
from mcp.server.stdio import stdio_server

from airlock.common.lines import PipeLines

# One JSON-RPC message is one line; a longer one ends the session (the SDK reads any).
MAX_LINE = 64 * 1024 * 1024


class _Lines:
    """What ``stdio_server`` reads from its stdin: ``async for line``."""

    def __init__(self, lines: PipeLines) -> None:
        self._lines = lines

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._lines.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", "replace")


class _Out:
    """What ``stdio_server`` writes its answers to: ``write`` then ``flush``."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _claim() -> tuple[int, int, Callable[[], None]] | None:
    """Private duplicates of fds 0 and 1, with 0 and 1 diverted; None to leave them be."""
    if not (_is_pipe(0) and _is_pipe(1)):
        return None
    sys.stdout.flush()
    taken: list[int] = []
    try:
        taken.append(fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3))
        taken.append(fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3))
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            os.dup2(null, 0)
        finally:
            os.close(null)
        os.dup2(2, 1)
    except OSError:
        for fd, private in enumerate(taken):
            with contextlib.suppress(OSError):
                os.dup2(private, fd)
                os.close(private)
        return None
    private_in, private_out = taken

    def restore() -> None:
        for fd, private in ((0, private_in), (1, private_out)):
            with contextlib.suppress(OSError):
                os.dup2(private, fd)
                os.set_blocking(fd, True)  # the pipe transports made it non-blocking

    return private_in, private_out, restore


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[tuple[Any, Any]]:
    """``stdio_server()``'s read and write streams, on the loop's pipes when possible."""
    claimed = _claim()
    if claimed is None:
        async with stdio_server() as streams:
            yield streams
        return
    private_in, private_out, restore = claimed
    loop = asyncio.get_running_loop()
    lines: PipeLines | None = None
    write_transport: asyncio.WriteTransport | None = None
    try:
        lines = await PipeLines.open(private_in, MAX_LINE)
        write_transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(private_out, "wb", 0)
        )
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
        # The SDK uses only `async for` on stdin and write/flush on stdout (mcp 2.3).
        stdin = cast("anyio.AsyncFile[str]", _Lines(lines))
        stdout = cast("anyio.AsyncFile[str]", _Out(writer))
        async with stdio_server(stdin, stdout) as streams:
            yield streams
    finally:
        restore()
        if lines is not None:
            lines.close()
        if write_transport is not None:
            write_transport.close()
