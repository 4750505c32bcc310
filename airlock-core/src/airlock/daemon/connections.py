"""Room on the socket for the person, whatever an agent does with connections.

Without limits, an agent holding ~1,000 idle or half-sent connections uses up the
daemon's file descriptors and nobody (not even ``airlock approve``) gets in. So:

- a connection that sends no complete request within ``daemon.idle_timeout`` is closed
  (aiohttp's keep-alive timer runs from the moment a connection is accepted, so this also
  ends slow headers), and a body must arrive within the same time (see ``http.py``);
- each uid holds at most ``daemon.max_connections_per_uid`` connections, and all uids
  together stay below the file descriptor limit. A connection over a cap sheds the
  *oldest* connection of that uid (of the busiest uid for the global cap) that has no
  request in progress, so the newest, such as the person's ``approve``, gets in even when
  the agent runs as the same uid. A shed connection whose request is running still
  finishes its work; only the answer is lost.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass

from airlock.common.logs import get_logger
from airlock.security.peers import Peer, peer_of

log = get_logger("airlock.daemon")

RESERVED_FDS = 64
"""Descriptors kept for everything but client connections (state, audit, notifiers, IMAP)."""

PEER = "airlock_peer"
"""Where a request carries its caller's :class:`Peer` (see ``http.peer``)."""


def connection_budget() -> int:
    """How many client connections the file descriptor limit leaves room for."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(8, soft - RESERVED_FDS)


@dataclass
class Connection:
    transport: asyncio.BaseTransport
    uid: int
    busy: int = 0
    peer: Peer | None = None
    """Who connected, as the kernel said at connect time (it cannot change after)."""


class ConnectionGuard:
    """Every open connection, oldest first, with its uid and whether a request runs on it."""

    def __init__(self, *, per_uid: int, total: int) -> None:
        self.per_uid = min(per_uid, total)
        self.total = total
        self._open: dict[asyncio.BaseTransport, Connection] = {}
        self.shed = 0
        self._warned_at = 0.0

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, transport: asyncio.BaseTransport) -> Connection | None:
        """Register a new connection; None when it is itself the one to close."""
        sock = transport.get_extra_info("socket")
        try:
            peer = peer_of(sock) if sock is not None else None
        except OSError:
            peer = None
        newcomer = Connection(transport, peer.uid if peer is not None else -1, peer=peer)
        self._open[transport] = newcomer
        same_uid = [c for c in self._open.values() if c.uid == newcomer.uid]
        if len(same_uid) > self.per_uid:
            self._shed_one(same_uid, newcomer)
        if len(self._open) > self.total:
            self._shed_one(self._busiest_uid(), newcomer)
        return newcomer if transport in self._open else None

    def forget(self, transport: asyncio.BaseTransport) -> None:
        self._open.pop(transport, None)

    def _busiest_uid(self) -> list[Connection]:
        counts: dict[int, int] = {}
        for conn in self._open.values():
            counts[conn.uid] = counts.get(conn.uid, 0) + 1
        busiest = max(counts, key=lambda uid: counts[uid])
        return [c for c in self._open.values() if c.uid == busiest]

    def _shed_one(self, candidates: list[Connection], newcomer: Connection) -> None:
        """Close the oldest idle connection among *candidates* (the newcomer last)."""
        others = [c for c in candidates if c is not newcomer]
        idle = [c for c in others if not c.busy]
        victim = (idle or others or [newcomer])[0]
        del self._open[victim.transport]
        victim.transport.abort()  # type: ignore[attr-defined]
        self.shed += 1
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            log.warning(
                "connections_shed", uid=victim.uid, open=len(self._open), shed_total=self.shed
            )

    def connection(self, transport: asyncio.BaseTransport | None) -> Connection | None:
        """The open connection a request came on (``http.FrontDoor`` marks it busy
        while the request runs and hands the request its peer)."""
        return self._open.get(transport) if transport is not None else None
