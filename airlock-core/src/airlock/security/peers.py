"""Who is on the other end of the socket: uid and pid from SO_PEERCRED."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Peer:
    uid: int
    pid: int | None = None

    @property
    def process(self) -> str | None:
        """The peer's process name (``/proc/PID/comm``), for prompts and audit lines."""
        if self.pid is None:
            return None
        try:
            return (
                Path(f"/proc/{self.pid}/comm")
                .read_text(encoding="utf-8", errors="replace")
                .strip()[:32]
            )
        except OSError:
            return None

    def audit_fields(self) -> dict[str, int | None]:
        return {"uid": self.uid, "pid": self.pid}


def speaks_for_owner(peer: Peer) -> bool:
    """Whether *peer* is the daemon's owner or root, who see every user's requests."""
    return peer.uid in (0, os.getuid())


def whose(peer: Peer) -> int | None:
    """The uid whose sessions *peer* lists and revokes: its own, or every uid's (None)
    for the daemon's owner and root."""
    return None if speaks_for_owner(peer) else peer.uid


def peer_of(sock: socket.socket) -> Peer:
    """The credentials the kernel recorded for the connecting process."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return Peer(uid=uid, pid=pid or None)
