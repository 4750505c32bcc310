"""IMAP message ids: ``<uidvalidity>.<uid>``, stable for as long as the folder exists.

A UID alone is not stable: a server that rebuilds a folder starts numbering again and
says so by changing the folder's UIDVALIDITY. Carrying it in the id means an old id can
never silently name a different message: it is refused as stale instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airlock.plugin import InvalidInput, NotFound

__all__ = ["ID_EXAMPLE", "ID_PATTERN", "ImapId", "parse_id"]

ID_PATTERN = re.compile(r"[1-9][0-9]{0,9}\.[1-9][0-9]{0,9}")
"""Two non-zero numbers without leading zeros, so each message has exactly one id."""
ID_EXAMPLE = "1733011200.4127"
_MAX = 2**32 - 1  # RFC 3501: nz-number is a 32-bit unsigned integer


@dataclass(frozen=True)
class ImapId:
    uidvalidity: int
    uid: int

    def __str__(self) -> str:
        return f"{self.uidvalidity}.{self.uid}"

    def check_current(self, uidvalidity: int, folder: str) -> None:
        """Refuse an id from an earlier numbering of *folder*."""
        if uidvalidity != self.uidvalidity:
            raise NotFound(
                f"message id {self} is stale: folder {folder!r} was renumbered by the "
                "server (its UIDVALIDITY changed)",
                hint="list or search the folder again to get current ids",
            )


def parse_id(text: str) -> ImapId:
    if not ID_PATTERN.fullmatch(text):
        raise InvalidInput(
            f"{text!r} is not an IMAP message id (they look like {ID_EXAMPLE!r})", field="id"
        )
    uidvalidity, uid = (int(part) for part in text.split("."))
    if uidvalidity > _MAX or uid > _MAX:
        raise InvalidInput(f"{text!r} is not an IMAP message id (number too large)", field="id")
    return ImapId(uidvalidity, uid)
