"""One blocking ``GET`` to the daemon, answered in JSON, with nothing heavy imported: what
``airlock status`` (and ``audit verify``) ask a running daemon, without the client's
event loop and pydantic models (together most of the command's time).

The wire is read the way :class:`~airlock.clients._http.DaemonConnection` reads it: a
missing or silent socket is :class:`~airlock.errors.DaemonUnreachable` (same words), an
error answer the :mod:`airlock.errors` class its body names (``error_from_response``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airlock import errors
from airlock.clients._reach import START_HINT, _unreachable, no_socket

if TYPE_CHECKING:
    import socket as sockets

TIMEOUT = 10.0
MAX_ANSWER = 16 * 1024 * 1024


def get_json(socket: Path, path: str, *, timeout: float = TIMEOUT) -> Any:
    """``GET path`` on the daemon's Unix *socket*; the decoded JSON answer."""
    missing = no_socket(socket)
    if missing is not None:
        raise missing
    import socket as sockets  # here: with no socket file, `airlock status` needs none

    request = (
        f"GET {path} HTTP/1.1\r\nHost: airlock\r\nAccept: application/json\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(socket))
            conn.sendall(request)
            answer = _read_all(conn)
    except TimeoutError:
        raise errors.DaemonUnreachable(
            f"the daemon at {socket} did not answer in time", hint=START_HINT
        ) from None
    except OSError as exc:
        raise _unreachable(socket, exc) from None
    status, body = _parse(answer, socket)
    if status >= 400:
        from airlock.clients._http import error_from_response

        raise error_from_response(status, body)
    try:
        return json.loads(body) if body else None
    except ValueError:
        raise errors.AirlockError(
            f"the daemon answered GET {path} with a body that is not JSON"
        ) from None


def _read_all(conn: sockets.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := conn.recv(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER:
            raise errors.AirlockError("the daemon's answer is too large")
    return b"".join(chunks)


def _parse(answer: bytes, socket: Path) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 answer (``Content-Length`` or chunked)."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise errors.DaemonUnreachable(
            f"the daemon at {socket} sent an answer that is not HTTP", hint=START_HINT
        )
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _unchunk(body)
    elif b"content-length" in headers:
        body = body[: int(headers[b"content-length"])]
    return int(parts[1]), body


def _unchunk(data: bytes) -> bytes:
    out: list[bytes] = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        data = rest[size + 2 :]
    return b"".join(out)
