"""One authenticated IMAP connection and the few commands the connector needs.

Blocking (imapclient is); the connector runs it in a worker thread and lets one call
use it at a time. A session is created with a :class:`WirePolicy`: the long-lived read
session is read-only (folders opened with EXAMINE), a write session lives for one
approved write and may SELECT.

Folder names the agent gives are resolved against the server's LIST before they are
used: an exact name, else a known alias (for providers with localised or bracketed
names such as ``[Gmail]/Trash``): the folder with a special-use flag (RFC 6154), or one
of the provider's usual names. So a folder name that reaches
the wire is one the server itself reported; it is still sent quoted (imapclient
encodes modified UTF-7 and quotes), and never holds CR or LF.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_message_list, parse_response

from airlock.plugin import ConnectorError, InvalidInput, NotFound
from airlock_mail._imap_client import Endpoint, GuardedClient, login
from airlock_mail._imap_guard import WirePolicy
from airlock_mail._imap_search import SearchCriteria
from airlock_mail.model import INBOX, Folder

__all__ = ["FolderEntry", "ImapSession"]

_CRLF = re.compile(r"[\r\n\x00]")
_UNSELECTABLE = {b"\\NOSELECT", b"\\NONEXISTENT"}
_LIST_HINT_MAX = 30


@dataclass(frozen=True)
class FolderEntry:
    name: str
    flags: frozenset[bytes]

    @property
    def selectable(self) -> bool:
        return not {f.upper() for f in self.flags} & _UNSELECTABLE


class ImapSession:
    """See the module docstring. ``aliases`` maps a lower-case alias (``trash``) to what
    it may mean, in order: special-use flags (``b"\\Trash"``) or folder names."""

    def __init__(
        self,
        endpoint: Endpoint,
        policy: WirePolicy,
        *,
        aliases: Mapping[str, Sequence[bytes | str]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.policy = policy
        self.aliases = dict(aliases or {})
        self.client: GuardedClient | None = None
        self.cut_off = False
        """:meth:`cut` was called: the call using this session was given up."""
        self._wire: GuardedClient | None = None  # set as soon as connected, for cut()
        self._folders: list[FolderEntry] | None = None
        self._capabilities: frozenset[bytes] = frozenset()

    # ------------------------------------------------------------------ connection

    def connect(self, username: str, password: str) -> None:
        """Connect and log in; errors propagate for the caller to translate."""
        client = self._wire = GuardedClient(self.endpoint, self.policy)
        try:
            if self.cut_off:
                raise imaplib.IMAP4.abort("the call was given up")
            login(client, username, password)
            self._capabilities = frozenset(c.upper() for c in client.capabilities())
        except BaseException:
            _shutdown(client)
            raise
        self.client = client

    def close(self) -> None:
        """LOGOUT (never CLOSE, which would expunge); safe to call twice."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # the connection may already be gone; nothing to keep
            _shutdown(client)

    def cut(self) -> None:
        """From another thread: end the connection now. The call using it fails at its
        next read or write, so nothing more is sent; a connect under way stops before
        it logs in."""
        self.cut_off = True
        client = self._wire
        if client is not None:
            with contextlib.suppress(Exception):  # closed already
                socket.socket.shutdown(client._imap.sock, socket.SHUT_RDWR)

    def discard(self) -> None:
        """Drop a broken connection without talking to the server."""
        client, self.client = self.client, None
        if client is not None:
            _shutdown(client)

    @property
    def imap(self) -> GuardedClient:
        if self.client is None:
            raise imaplib.IMAP4.abort("not connected")
        return self.client

    @property
    def commands_sent(self) -> int:
        return self.imap.guard.commands_sent

    def has(self, capability: bytes) -> bool:
        return capability.upper() in self._capabilities

    # ------------------------------------------------------------------ folders

    def folders(self, *, refresh: bool = False) -> list[FolderEntry]:
        if self._folders is None or refresh:
            listed = self.imap.list_folders()
            self._folders = [FolderEntry(str(name), frozenset(flags)) for flags, _, name in listed]
        return self._folders

    def folder(self, name: str) -> str:
        """The server's name for the folder the agent called *name*; see the module
        docstring. NotFound names the folders there are."""
        if _CRLF.search(name):
            raise InvalidInput("a folder name must not contain CR, LF or NUL", field="folder")
        if name.upper() == INBOX:
            return INBOX
        for refresh in (False, True):
            entry = self._find(name, self.folders(refresh=refresh))
            if entry is not None:
                if not entry.selectable:
                    raise InvalidInput(
                        f"{entry.name!r} only holds other folders; it has no messages",
                        field="folder",
                    )
                return entry.name
        names = [f.name for f in self.folders() if f.selectable]
        shown = ", ".join(names[:_LIST_HINT_MAX]) + (", ..." if len(names) > _LIST_HINT_MAX else "")
        raise NotFound(f"no folder {name!r} on the server", hint=f"folders: {shown}")

    def _find(self, name: str, entries: Sequence[FolderEntry]) -> FolderEntry | None:
        for entry in entries:
            if entry.name == name:
                return entry
        for meaning in self.aliases.get(name.casefold(), ()):
            for entry in entries:
                if meaning in entry.flags or meaning == entry.name:
                    return entry
        return None

    def folder_counts(self) -> list[Folder]:
        """Every selectable folder with its message and unread counts, INBOX first:
        one command with LIST-STATUS (RFC 5819), else LIST and a STATUS a folder."""
        if self.has(b"LIST-STATUS"):
            counts = self._list_status()
        else:
            counts = {
                f.name: self.status(f.name) for f in self.folders(refresh=True) if f.selectable
            }
        found = [
            Folder(name=name, messages=n.get(b"MESSAGES", 0), unread=n.get(b"UNSEEN", 0))
            for name, n in counts.items()
        ]
        found.sort(key=lambda f: f.name != INBOX)
        return found

    def _list_status(self) -> dict[str, dict[bytes, int]]:
        listed = self.imap.raw_untagged(
            b"LIST",
            [b'""', b'"*"', b"RETURN", b"(STATUS", b"(MESSAGES", b"UNSEEN))"],
            response="LIST",
            uid=False,
        )
        self._folders = [
            FolderEntry(str(name), frozenset(flags))
            for flags, _, name in self.imap._proc_folder_list(listed)
        ]
        _, statuses = self.imap._imap._untagged_response("OK", [None], "STATUS")
        counts: dict[str, dict[bytes, int]] = {}
        for line in statuses:
            if line is None:
                continue
            parsed = parse_response([line] if isinstance(line, bytes) else list(line))
            name = parsed[0]
            name = decode_utf7(name) if isinstance(name, bytes) else str(name)
            counts[name] = _pairs(parsed[-1])
        return {f.name: counts.get(f.name, {}) for f in self._folders if f.selectable}

    def status(
        self, folder: str, items: Sequence[str] = ("MESSAGES", "UNSEEN")
    ) -> dict[bytes, int]:
        return _pairs(self.imap.folder_status(folder, list(items)))

    # ------------------------------------------------------------------ messages

    def examine(self, folder: str) -> int:
        """Open *folder* read-only (EXAMINE); returns its UIDVALIDITY."""
        return self._open(folder, readonly=True)

    def select(self, folder: str) -> int:
        """Open *folder* read-write (SELECT): write sessions only (the guard enforces it)."""
        return self._open(folder, readonly=False)

    def _open(self, folder: str, *, readonly: bool) -> int:
        answer = self.imap.select_folder(folder, readonly=readonly)
        uidvalidity = answer.get(b"UIDVALIDITY")
        if not isinstance(uidvalidity, int):
            raise ConnectorError(f"the server gave no UIDVALIDITY for {folder!r}")
        return uidvalidity

    def search(self, criteria: SearchCriteria) -> list[int]:
        """UID SEARCH with arguments sent exactly as built (see ``_imap_search``)."""
        data = self.imap.raw_untagged(b"SEARCH", criteria.command_args(), response="SEARCH")
        return [int(uid) for uid in parse_message_list(data)]

    def fetch(self, uids: Sequence[int], items: Sequence[bytes]) -> dict[int, dict[bytes, Any]]:
        if not uids:
            return {}
        found: dict[int, dict[bytes, Any]] = self.imap.fetch(list(uids), list(items))
        return found


def _pairs(value: Any) -> dict[bytes, int]:
    if isinstance(value, dict):
        return {bytes(k).upper(): int(v) for k, v in value.items() if isinstance(v, int)}
    items = list(value) if isinstance(value, (tuple, list)) else []
    return {
        bytes(items[i]).upper(): int(items[i + 1])
        for i in range(0, len(items) - 1, 2)
        if isinstance(items[i], bytes) and isinstance(items[i + 1], int)
    }


def _shutdown(client: GuardedClient) -> None:
    with contextlib.suppress(Exception):  # a socket that will not close is closed already
        client.shutdown()
