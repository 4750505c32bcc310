"""PipeLines (airlock.plugin): the lines of a pipe on the event loop, each bounded, for
`airlock mcp`'s stdin and an MCP server's stdout in the proxy."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from airlock.plugin import LineTooLong, PipeLines

LIMIT = 1 << 20
SLACK = (256 + 64 + 64) * 1024
"""Past what is read: one read of the pipe (256 KiB), the pipe itself, one write."""


class Writer(threading.Thread):
    """Writes *data* to a pipe, then (if *endless*) 64 KiB chunks of ``x`` until the
    reader closes its end; :attr:`sent` counts what the pipe took."""

    def __init__(self, fd: int, data: bytes, *, endless: bool = False) -> None:
        super().__init__()
        self.fd, self.data, self.endless, self.sent = fd, data, endless, 0

    def run(self) -> None:
        try:
            self.sent += os.write(self.fd, self.data) if self.data else 0
            while self.endless:
                self.sent += os.write(self.fd, b"x" * 65536)
        except BrokenPipeError:
            pass
        finally:
            os.close(self.fd)


def read_with(data: bytes, *, endless: bool = False) -> tuple[list[bytes], Exception | None, int]:
    """Every line PipeLines gives, what ended the reading, and what the writer sent."""

    async def main(read_fd: int) -> tuple[list[bytes], Exception | None]:
        lines, got = await PipeLines.open(read_fd, LIMIT), []
        try:
            while line := await lines.readline():
                got.append(line)
        except LineTooLong as exc:
            return got, exc
        finally:
            lines.close()
        return got, None

    read_fd, write_fd = os.pipe()
    writer = Writer(write_fd, data, endless=endless)
    writer.start()
    got, ended = asyncio.run(main(read_fd))
    writer.join()
    return got, ended, writer.sent


def test_lines_come_whole_and_the_last_may_lack_its_newline() -> None:
    got, ended, _ = read_with(b"one\n\ntwo\n" + b"y" * LIMIT + b"\nlast")
    assert got == [b"one\n", b"\n", b"two\n", b"y" * LIMIT + b"\n", b"last"]
    assert ended is None


def test_a_line_over_the_limit_ends_the_reading_after_about_the_limit() -> None:
    """A writer that never ends its line: read no further than the limit (and a read),
    then stopped, so it learns its pipe is closed."""
    got, ended, sent = read_with(b"before\n", endless=True)
    assert got == [b"before\n"]
    assert isinstance(ended, LineTooLong)
    assert sent <= len(b"before\n") + LIMIT + SLACK


def test_a_line_over_the_limit_is_a_value_error_as_asyncio_raised() -> None:
    """`airlock mcp` relied on asyncio's ValueError to end its session."""
    assert issubclass(LineTooLong, ValueError)


def test_discard_reads_to_a_bound_then_stops() -> None:
    """At a server's stop its output is read and dropped so it can finish writing and
    exit; a server that never stops writing is read no further than the bound."""

    async def main(read_fd: int) -> None:
        lines = await PipeLines.open(read_fd, LIMIT)
        await lines.discard(LIMIT)

    read_fd, write_fd = os.pipe()
    writer = Writer(write_fd, b"", endless=True)
    writer.start()
    asyncio.run(main(read_fd))
    writer.join()
    assert writer.sent <= LIMIT + SLACK


@pytest.mark.parametrize("tail", [b"", b"partial"])
def test_discard_ends_at_the_end_of_the_stream(tail: bytes) -> None:
    async def main(read_fd: int) -> None:
        lines = await PipeLines.open(read_fd, LIMIT)
        await lines.discard(LIMIT)

    read_fd, write_fd = os.pipe()
    writer = Writer(write_fd, b"a\nb\n" + tail)
    writer.start()
    asyncio.run(main(read_fd))
    writer.join()
    assert writer.sent == 4 + len(tail)
