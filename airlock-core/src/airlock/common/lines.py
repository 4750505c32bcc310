"""The lines of a pipe, read on the event loop: what `airlock mcp` reads from its agent
and what the MCP proxy reads from a server's stdout.

asyncio's reader looks for a newline only in the bytes that arrived since it last
looked, so a line costs time linear in its length (the MCP library's stdio client joins
each chunk to the line so far, in time quadratic in the line's length: its stdio client
spent ~55 s of CPU on 80 MB without a newline).
A line longer than the limit raises :class:`LineTooLong` once that much of it has
arrived, and reading stops there: the writer is broken or hostile, and where its next
line would start cannot be told.
"""

from __future__ import annotations

import asyncio
import os

__all__ = ["LineTooLong", "PipeLines"]


class LineTooLong(ValueError):
    """A line went on past the limit without its newline."""


class PipeLines:
    """Lines from the read end of a pipe (or a socket), each at most *limit* bytes.

    The reader holds at most about twice the limit of data not yet read as lines."""

    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.ReadTransport) -> None:
        self._reader = reader
        self._transport = transport

    @classmethod
    async def open(cls, fd: int, limit: int) -> PipeLines:
        """Read *fd* (now owned here: :meth:`close` closes it) on the running loop."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=limit)
        pipe = os.fdopen(fd, "rb", 0)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            pipe.close()
            raise
        return cls(reader, transport)

    async def readline(self) -> bytes:
        """The next line with its newline (the last one may lack it); ``b""`` at the end.

        Raises :class:`LineTooLong` for a line over the limit, and reads no further."""
        try:
            return await self._reader.readline()
        except ValueError:
            self.close()
            raise LineTooLong("a line went on past the limit") from None

    async def discard(self, most: int) -> None:
        """Read and drop what arrives until the end (or an error reading), at most
        *most* bytes (a writer blocked on a full pipe can finish and exit), then stop
        reading."""
        left = most
        try:
            while left > 0 and (data := await self._reader.read(min(left, 1 << 16))):
                left -= len(data)
        except OSError:
            pass  # the pipe broke: nothing more to drop
        finally:
            self.close()

    def close(self) -> None:
        self._transport.close()
