"""HTTP/1.1 to the daemon on asyncio streams over its Unix socket, kept alive between
requests: the transport under :class:`~airlock.clients._http.DaemonConnection`.

The daemon is the only peer and speaks plain HTTP/1.1 with JSON bodies, so this is a
small client rather than a general one: one request written at once, the answer read by
``Content-Length`` (or chunked, or to the end), no redirects, no proxies, no cookies.
Anything else it meets is refused (:class:`BadAnswer`), never guessed at. It costs
~0.1 ms of CPU a request where aiohttp's client costs ~0.5 ms and httpx's ~1.6 ms
(benchmarks/gateway.py, the Python client's part).

Connections are pooled: a request takes an idle one (or opens one), and gives it back
only after a complete answer the daemon did not mark ``Connection: close``; a request
that failed or was cancelled (a timeout) closes its connection, whose state is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
MAX_IDLE = 8  # idle connections kept; a burst of concurrent calls closes the rest
MAX_ANSWER = 16 * 1024 * 1024
_FORBIDDEN = frozenset("\r\n\0")


class BadAnswer(Exception):
    """The daemon's answer is not HTTP this client reads."""


class AnswerTooLarge(BadAnswer):
    """The answer is larger than :data:`MAX_ANSWER`."""


class ClosedEarly(Exception):
    """The daemon closed the connection before a whole answer; *silent* when it sent
    nothing at all, *reused* when the connection had been idle in the pool."""

    def __init__(self, *, silent: bool) -> None:
        super().__init__("the daemon closed the connection before answering")
        self.silent = silent
        self.reused = False


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def usable(self, keepalive: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and time.monotonic() - self.idle_since < keepalive
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a transport of a loop already closed
            self.writer.close()


def encode_request(
    method: str, target: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The bytes of one request; a line break in any part is refused (ValueError), so no
    value can add a header or a request of its own."""
    lines = [f"{method} {target} HTTP/1.1", "Host: airlock"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body or b'')}")
    if " " in target or _FORBIDDEN.intersection(method + target):
        raise ValueError("the request's path holds a space or a line break")
    for name, value in headers.items():
        if _FORBIDDEN.intersection(name + value) or ":" in name:
            raise ValueError(f"the {name.strip()[:40]!r} header holds a line break")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("a header holds a character HTTP headers cannot carry") from None
    return head + (body or b"")


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the connection may carry another request."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise ClosedEarly(silent=not exc.partial) from None
    except asyncio.LimitOverrunError:
        raise BadAnswer("the answer's head is too long") from None
    try:
        return await _read_rest(reader, head)
    except asyncio.IncompleteReadError:
        raise ClosedEarly(silent=False) from None
    except asyncio.LimitOverrunError:
        raise BadAnswer("a chunk size line is too long") from None


async def _read_rest(reader: asyncio.StreamReader, head: bytes) -> tuple[int, bytes, bool]:
    lines = head[:-4].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise BadAnswer("no HTTP status line")
    status = int(code)
    if status < 200:
        raise BadAnswer(f"an interim answer ({status}) to a request that asked for none")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadAnswer("a header line without a colon")
        headers[name.strip().lower()] = value.strip()
    keep = version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
    if status in (204, 304):
        return status, b"", keep
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return status, await _read_chunked(reader), keep
    length = headers.get(b"content-length")
    if length is None:
        return status, await _read_to_end(reader), False
    if not length.isdigit():
        raise BadAnswer("a Content-Length that is not a number")
    if int(length) > MAX_ANSWER:
        raise AnswerTooLarge()
    return status, await reader.readexactly(int(length)), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = (await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise BadAnswer("a chunk size that is not a number") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
                pass
            return b"".join(chunks)
        total += size
        if total > MAX_ANSWER:
            raise AnswerTooLarge()
        chunk = await reader.readexactly(size + 2)
        if not chunk.endswith(b"\r\n"):
            raise BadAnswer("a chunk without its line end")
        chunks.append(chunk[:-2])


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    data = await reader.read(MAX_ANSWER + 1)
    chunks = [data]
    total = len(data)
    while data and total <= MAX_ANSWER:
        data = await reader.read(MAX_ANSWER + 1 - total)
        chunks.append(data)
        total += len(data)
    if total > MAX_ANSWER:
        raise AnswerTooLarge()
    return b"".join(chunks)


class Pool:
    """Keep-alive connections to one Unix socket, used from one event loop at a time (a
    pool met from another loop drops the connections of the old one)."""

    def __init__(self, path: str, *, keepalive: float) -> None:
        self.path = path
        self.keepalive = keepalive
        self._idle: list[_Conn] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def exchange(self, request: bytes, *, retry_idle: bool) -> tuple[int, bytes]:
        """Send *request*, read its answer. *retry_idle* (safe for a GET) sends it once
        more on a new connection when a reused one turns out closed by the daemon."""
        try:
            return await self._exchange(request)
        except ClosedEarly as early:
            if not (retry_idle and early.reused and early.silent):
                raise
        return await self._exchange(request)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        conn = self._take()
        reused = conn is not None
        if conn is None:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=MAX_HEAD)
            conn = _Conn(reader, writer)
        done = False
        try:
            conn.writer.write(request)
            try:
                status, body, keep = await read_answer(conn.reader)
            except ClosedEarly as early:
                early.reused = reused
                raise
            done = True
        finally:
            if done and keep and len(self._idle) < MAX_IDLE:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()
        return status, body

    def _take(self) -> _Conn | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._drop()
            self._loop = loop
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(self.keepalive):
                return conn
            conn.close()
        return None

    def _drop(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if self._loop is asyncio.get_running_loop():
            for conn in idle:
                with contextlib.suppress(Exception):
                    await conn.writer.wait_closed()
