"""The fast path's wire format: an operation call read from a connection's bytes, in its
strict form only, and an answer written as HTTP/1.1 (see ``fast_path``).

The strict form: the request line exactly ``POST /v1/ops/<service>/<operation>
HTTP/1.1``, with the names as the config and the connectors allow them (no escapes, no
query); a head of at most 8 KiB in printable ASCII whose lines are each ``name: value``
with a token for a name, at most 128 of them (aiohttp refuses more), no name twice
(aiohttp refuses a second ``Content-Type``, ``User-Agent`` and others); one ``Host``;
``Content-Length`` digits within the body limit; ``Connection`` ``keep-alive`` or
``close``; no ``Transfer-Encoding``, ``Expect``, ``Upgrade``, ``Content-Encoding``,
``Proxy-Connection`` (aiohttp's parser reads it as ``Connection``) or
``Sec-WebSocket-Key1`` (aiohttp refuses it); and the whole body here. The tests hold
it to aiohttp's reading of the same bytes, byte-mangled heads included.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import formatdate

from aiohttp import web

from airlock.daemon.http import BODY_LIMIT, INTERNAL_ERROR, internal_error

__all__ = ["Call", "CallReader", "encode_json", "encode_response"]

HEAD_LIMIT = 8192
"""The longest head taken here (aiohttp's own limit for a line or a field is 8190)."""
_REQUEST_LINE = re.compile(
    rb"POST /v1/ops/([a-z][a-z0-9_-]{0,31})/([a-z][a-z0-9_]{1,47}) HTTP/1\.1\Z"
)
_FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([\x20-\x7e\t]*)\Z")
FIELD_LIMIT = 128
"""The most header fields taken here (aiohttp's ``max_headers``: a 400 for more)."""
_NOT_HERE = frozenset(
    (
        b"transfer-encoding",
        b"expect",
        b"upgrade",
        b"content-encoding",
        b"proxy-connection",  # llhttp: the same as Connection
        b"sec-websocket-key1",  # aiohttp: a 400
    )
)
_LENGTH = re.compile(rb"[0-9]{1,8}\Z")


@dataclass(slots=True)  # not frozen: a frozen init costs the hot path ~3 times as much
class Call:
    """One operation call read from a connection's bytes."""

    service: str
    operation: str
    authorization: str
    body: bytes
    close: bool
    size: int
    """How many bytes of the connection it took, head and body."""


@dataclass(slots=True, frozen=True)
class _Head:
    """What a head in the strict form says (all of a call but its body)."""

    service: str
    operation: str
    authorization: str
    length: int
    close: bool


class CallReader:
    """Reads one connection's operation calls. An agent sends the same head call after
    call (its path, token and body length do not change): a head byte for byte the same
    as this connection's last one says the same, and is not parsed again."""

    __slots__ = ("_head", "_said")

    def __init__(self) -> None:
        self._head = b""
        self._said: _Head | None = None

    def read(self, data: bytes | bytearray) -> Call | None:
        """The operation call at the start of *data* in the strict form, whole; None for
        anything else (aiohttp's then)."""
        end = data.find(b"\r\n\r\n", 0, HEAD_LIMIT)
        if end < 0:
            return None
        head = bytes(data[:end])
        said = self._said
        if said is None or head != self._head:
            said = _read_head(head)
            if said is None:
                return None
            self._head, self._said = head, said
        size = end + 4 + said.length
        if len(data) < size:
            return None
        return Call(
            service=said.service,
            operation=said.operation,
            authorization=said.authorization,
            body=bytes(data[end + 4 : size]),
            close=said.close,
            size=size,
        )


def _read_head(head: bytes) -> _Head | None:
    lines = head.split(b"\r\n")
    line = _REQUEST_LINE.match(lines[0])
    if line is None:
        return None
    if len(lines) - 1 > FIELD_LIMIT:
        return None
    seen: dict[bytes, bytes] = {}
    for raw in lines[1:]:
        field = _FIELD.match(raw)
        if field is None:
            return None
        name = field[1].lower()
        if name in _NOT_HERE or name in seen:
            return None
        seen[name] = field[2].strip(b" \t")
    if b"host" not in seen:  # aiohttp refuses an HTTP/1.1 request without one
        return None
    length = seen.get(b"content-length", b"0")
    if _LENGTH.match(length) is None or int(length) > BODY_LIMIT:
        return None
    connection = seen.get(b"connection", b"keep-alive").lower()
    if connection not in (b"keep-alive", b"close"):
        return None
    return _Head(
        service=line[1].decode(),
        operation=line[2].decode(),
        authorization=seen.get(b"authorization", b"").decode(),
        length=int(length),
        close=connection == b"close",
    )


_date: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date[1]


_LINE_BREAK = re.compile(r"[\r\n]")
_SET_HERE = frozenset(("content-length", "connection", "transfer-encoding", "date"))


def encode_response(response: web.StreamResponse, *, close: bool) -> bytes:
    """*response* as HTTP/1.1 bytes (what aiohttp would have written, Server aside)."""
    body = response.body if isinstance(response, web.Response) else None
    # Every answer here has its bytes, and no header a line break (which would split
    # the answer; aiohttp refuses the same): a bug otherwise, answered as one.
    if not isinstance(body, bytes) or any(
        _LINE_BREAK.search(name + value) for name, value in response.headers.items()
    ):
        response = internal_error()
        body = INTERNAL_ERROR
    lines = [b"HTTP/1.1 %d %s" % (response.status, response.reason.encode("latin-1"))]
    for name, value in response.headers.items():
        if name.lower() not in _SET_HERE:
            lines.append(f"{name}: {value}".encode("latin-1"))
    lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Date: " + _http_date())
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def encode_json(body: bytes, *, close: bool) -> bytes:
    """A 200 answer of JSON *body*: the bytes :func:`encode_response` writes for
    ``web.Response(body=body, content_type="application/json")``, without making one."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    end = b"\r\nConnection: close\r\n\r\n" if close else b"\r\n\r\n"
    return b"%bContent-Length: %d\r\nDate: %b%b%b" % (head, len(body), _http_date(), end, body)
