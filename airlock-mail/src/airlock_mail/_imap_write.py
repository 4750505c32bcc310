"""The three approved writes, on a read-write session of their own (see ``imap``).

Each checks before it changes: the id's UIDVALIDITY must still be the folder's, and the
message must exist, so a stale or invented id is refused instead of silently doing
nothing. A move uses UID MOVE (RFC 6851), or else UID COPY, ``\\Deleted`` and UID
EXPUNGE of that one UID (UIDPLUS); a server with neither is refused, because a plain
EXPUNGE would also remove every other message someone had marked deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airlock.plugin import ConnectorError, InvalidInput, NotFound
from airlock_mail._imap_ids import ImapId

if TYPE_CHECKING:
    from airlock_mail._imap_session import ImapSession

__all__ = ["move_message", "set_seen"]

SEEN = b"\\Seen"
DELETED = b"\\Deleted"


def _open_message(session: ImapSession, folder: str, mid: ImapId) -> tuple[str, tuple[bytes, ...]]:
    """SELECT the folder, check the id, and return the folder's name and the flags."""
    name = session.folder(folder)
    mid.check_current(session.select(name), name)
    found = session.fetch([mid.uid], [b"FLAGS"]).get(mid.uid)
    if found is None:
        raise NotFound(f"no message {mid} in {name!r}", hint="list_messages shows the ids")
    return name, tuple(found.get(b"FLAGS", ()))


def set_seen(session: ImapSession, folder: str, mid: ImapId, *, seen: bool) -> bool:
    """Set or clear ``\\Seen``; returns whether the flag changed."""
    _, flags = _open_message(session, folder, mid)
    if (SEEN in flags) is seen:
        return False
    if seen:
        session.imap.add_flags([mid.uid], [SEEN], silent=True)
    else:
        session.imap.remove_flags([mid.uid], [SEEN], silent=True)
    return True


def move_message(session: ImapSession, folder: str, mid: ImapId, to_folder: str) -> None:
    target = session.folder(to_folder)
    name, _ = _open_message(session, folder, mid)
    if target == name:
        raise InvalidInput(f"the message is already in {name!r}", field="to_folder")
    if session.has(b"MOVE"):
        session.imap.move([mid.uid], target)
    elif session.has(b"UIDPLUS"):
        session.imap.copy([mid.uid], target)
        session.imap.add_flags([mid.uid], [DELETED], silent=True)
        session.imap.uid_expunge([mid.uid])
    else:
        raise ConnectorError(
            "this server supports neither MOVE nor UIDPLUS, so a move would also expunge "
            "other deleted messages; move it in your mail program instead"
        )
