"""Connecting to a local service's Unix socket only when no other user can reach it.

A local service that listens on a socket with no authentication of its own (signal-cli's
JSON-RPC daemon) is safe to use only if its file permissions keep every other user out:
whoever can connect to it can do all it does (read the person's replies, codes included,
and send as them). So :func:`open_private_socket` connects only to a socket that

* is a socket (a link is refused: it would name whatever its owner points it at),
* only its owner can connect to (connecting needs write permission: no group or other
  write bit),
* is owned by the caller or root (root, setting up for the daemon, may also use one of
  the isolated-mode service user's, ``airlock``: signal-cli runs as it; not any user's,
  or an agent user could plant one where root is told to look), and
* has at its other end a process of the socket's owner, the caller or root
  (``SO_PEERCRED``): a socket another user planted, or swapped in after the check, is
  refused before a byte is sent.

Anything else is :class:`SocketNotPrivate`, whose message says what to change.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import stat

from airlock.security.peers import peer_of
from airlock.service.layout import CORE

__all__ = ["SocketNotPrivate", "open_private_socket"]


class SocketNotPrivate(Exception):
    """The socket could be reached (or was made) by another user: it is not used."""


async def open_private_socket(
    path: str, *, limit: int, service_user: str = CORE.name
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the socket at *path* (OSError when nothing listens there);
    *limit* bounds a line read from it (the StreamReader's buffer); root may also use a
    socket of *service_user*'s."""
    info = os.lstat(path)
    if not stat.S_ISSOCK(info.st_mode):
        kind = "a link" if stat.S_ISLNK(info.st_mode) else "not a socket"
        raise SocketNotPrivate(f"{path} is {kind}")
    me = os.geteuid()
    if info.st_mode & 0o022:
        raise SocketNotPrivate(
            f"{path} lets other users connect (mode {stat.S_IMODE(info.st_mode):o}): "
            "start the service with umask 077 so only its owner can"
        )
    if info.st_uid not in (me, 0):
        if me != 0:
            raise SocketNotPrivate(
                f"{path} belongs to uid {info.st_uid}: run the service as this user ({me})"
            )
        if info.st_uid != _uid_of(service_user):
            raise SocketNotPrivate(
                f"{path} belongs to uid {info.st_uid}: run the service as root or as {service_user}"
            )
    reader, writer = await asyncio.open_unix_connection(path, limit=limit)
    peer = peer_of(writer.get_extra_info("socket"))
    if peer.uid not in (info.st_uid, me, 0):
        writer.close()
        raise SocketNotPrivate(f"the process behind {path} runs as uid {peer.uid}")
    return reader, writer


def _uid_of(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None
