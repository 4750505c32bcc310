"""Which local user is on the other end of a dashboard connection.

A browser sends a host's cookies to every port of that host, so the dashboard's login
cookie reaches any web server another local user runs on 127.0.0.1. TCP has no
``SO_PEERCRED``, but on Linux the kernel lists both ends of every connection made on
this machine, each with the uid that owns it, in ``/proc/self/net/tcp`` (and ``tcp6``):
the dashboard binds a login to the uid of the browser that logged in. A client on
another machine (``dashboard.allow_remote``) is not listed: its uid is unknown (None).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from pathlib import Path

TABLES = {
    int(socket.AF_INET): Path("/proc/self/net/tcp"),
    int(socket.AF_INET6): Path("/proc/self/net/tcp6"),
}
UID_COLUMN = 7
INODE_COLUMN = 9
HUNG_UP = -1
"""What :func:`peer_uid` says of a client end the kernel lists with no socket (inode 0):
its program closed it, right after sending its request say, and the kernel keeps it only
to finish the connection, as uid 0 once the close is acknowledged. Nobody is there to
read an answer, and nobody's request to act on (it would pass as root's)."""


def _hex_address(family: int, host: str, port: int) -> str:
    """An address as the kernel prints it there: each 32-bit word in host byte order."""
    packed = socket.inet_pton(family, host.partition("%")[0])
    words = (packed[i : i + 4] for i in range(0, len(packed), 4))
    text = "".join(f"{int.from_bytes(w, sys.byteorder):08X}" for w in words)
    return f"{text}:{port:04X}"


def _ipv4_mapped(host: str) -> str | None:
    try:
        found = ipaddress.IPv6Address(host.partition("%")[0]).ipv4_mapped
    except ValueError:
        return None
    return str(found) if found is not None else None


def peer_uid(family: int, server: tuple[str, int], client: tuple[str, int]) -> int | None:
    """The uid owning the *client* end of a TCP connection to *server* (``sockname`` and
    ``peername``), when the client runs on this machine and the kernel says so;
    :data:`HUNG_UP` when its program closed it already; None otherwise."""
    server, client = (server[0], server[1]), (client[0], client[1])
    if family == socket.AF_INET6:
        mapped = _ipv4_mapped(server[0]), _ipv4_mapped(client[0])
        if mapped[0] is not None and mapped[1] is not None:
            # An IPv4 client of a dual-stack listener (``::``): its end is an IPv4 socket.
            family, server, client = socket.AF_INET, (mapped[0], server[1]), (mapped[1], client[1])
    table = TABLES.get(family)
    if table is None:
        return None
    try:
        theirs = _hex_address(family, client[0], client[1])
        ours = _hex_address(family, server[0], server[1])
        lines = table.read_text(encoding="ascii").splitlines()[1:]
    except (OSError, ValueError):
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > INODE_COLUMN and fields[1] == theirs and fields[2] == ours:
            return HUNG_UP if fields[INODE_COLUMN] == "0" else int(fields[UID_COLUMN])
    return None


def transport_uid(transport: asyncio.BaseTransport | None) -> int | None:
    """:func:`peer_uid` of a connection's transport; None when it is gone or the kernel
    does not say (its table unreadable too: no file descriptor left, say)."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return None
    try:
        return peer_uid(sock.family, sock.getsockname()[:2], sock.getpeername()[:2])
    except OSError:
        return None
