"""``MailConnector``: the eight mail operations (docs/mail.md), declared once for every
backend.

The operations (names, access levels, params and result models, descriptions) are the
contract agents and policies see, so they must be identical for maildir, imap, gmail
and icloud. This base class declares them and does the shared work: it checks ids
against the backend's pattern, parses the search query once, canonicalises ``INBOX``,
refuses a move onto itself, and builds the result models. A backend subclass sets
``name``, ``title``, ``Settings`` (and ``Credentials``), ``id_pattern`` and
``id_example``, and implements the ``load_*`` (read) and ``store_*`` (write) methods
below. ``load_*`` methods must not change anything on the service (no \\Seen flag, no
move from new/ to cur/): agents read with read-only sessions.

Time comes from an injected :class:`~airlock.plugin.Clock`, so relative searches
(``newer_than:7d``) are testable without sleeping.
"""

from __future__ import annotations

import abc
import re
from datetime import UTC, date, datetime
from typing import ClassVar

from pydantic import BaseModel

from airlock.plugin import (
    Access,
    CheckResult,
    Clock,
    Connector,
    Done,
    InvalidInput,
    SystemClock,
    ToolAlias,
    operation,
)
from airlock_mail.model import (
    INBOX,
    CountUnreadParams,
    Folder,
    FolderList,
    GetMessageParams,
    ListFoldersParams,
    ListMessagesParams,
    Message,
    MessageList,
    MessageRef,
    MessageSummary,
    MoveParams,
    SearchParams,
    UnreadCount,
)
from airlock_mail.query import Query, parse_query

__all__ = ["MailConnector"]


class MailConnector(Connector, abc.ABC):
    """Base of every mail connector; see the module docstring for what a backend adds."""

    id_pattern: ClassVar[re.Pattern[str]]
    """The exact shape of this backend's message ids (IMAP: ``<uidvalidity>.<uid>``)."""
    id_example: ClassVar[str]
    """An id of that shape, for error messages."""

    # The tool names agents configured for the original Airlock's MCP server still work.
    tool_aliases = (
        ToolAlias(
            "airlock_list_emails",
            "list_messages",
            "List messages in a mail folder, newest first.",
            {"limit": "limit", "folder": "folder"},
        ),
        ToolAlias(
            "airlock_search_emails", "search", "Search mail.", {"query": "query", "limit": "limit"}
        ),
        ToolAlias(
            "airlock_get_email",
            "get_message",
            "Read one message: headers, text and attachment names.",
            {"message_id": "id", "folder": "folder"},
        ),
        ToolAlias(
            "airlock_count_unread", "count_unread", "Count unread messages in the inbox.", {}
        ),
    )

    def __init__(
        self,
        settings: BaseModel,
        credentials: BaseModel,
        *,
        service: str,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, credentials, service=service)
        self.clock: Clock = clock or SystemClock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    # ------------------------------------------------------------------ operations

    @operation(
        access=Access.READ,
        params=ListFoldersParams,
        result=FolderList,
        description="List the mail folders with their message and unread counts.",
    )
    async def list_folders(self, params: ListFoldersParams) -> FolderList:
        return FolderList(folders=await self.load_folders())

    @operation(
        access=Access.READ,
        params=ListMessagesParams,
        result=MessageList,
        description="List messages in a folder, newest first (summaries, no full text).",
    )
    async def list_messages(self, params: ListMessagesParams) -> MessageList:
        found = await self.load_summaries(
            _folder(params.folder),
            limit=params.limit,
            unread_only=params.unread_only,
            since=params.since,
        )
        return MessageList(messages=found[: params.limit])

    @operation(
        access=Access.READ,
        params=SearchParams,
        result=MessageList,
        description=(
            "Search a folder, newest first: from:, to:, subject:, is:unread, is:read, "
            'has:attachment, newer_than:7d, after:YYYY-MM-DD, before:, "phrases", words.'
        ),
    )
    async def search(self, params: SearchParams) -> MessageList:
        query = parse_query(params.query)
        found = await self.search_folder(_folder(params.folder), query, limit=params.limit)
        return MessageList(messages=found[: params.limit])

    @operation(
        access=Access.READ,
        params=GetMessageParams,
        result=Message,
        description=(
            "Read one message: headers, text (HTML rendered as text) and attachment "
            "names; it stays unread if it was."
        ),
    )
    async def get_message(self, params: GetMessageParams) -> Message:
        self.check_id(params.id)
        return await self.load_message(
            _folder(params.folder), params.id, max_chars=params.max_chars
        )

    @operation(
        access=Access.READ,
        params=CountUnreadParams,
        result=UnreadCount,
        description="Count the unread messages in a folder.",
    )
    async def count_unread(self, params: CountUnreadParams) -> UnreadCount:
        folder = _folder(params.folder)
        return UnreadCount(folder=folder, unread=await self.load_unread_count(folder))

    @operation(
        access=Access.WRITE,
        params=MessageRef,
        result=Done,
        description="Mark a message as read.",
    )
    async def mark_read(self, params: MessageRef) -> Done:
        return await self._set_seen(params, seen=True)

    @operation(
        access=Access.WRITE,
        params=MessageRef,
        result=Done,
        description="Mark a message as unread.",
    )
    async def mark_unread(self, params: MessageRef) -> Done:
        return await self._set_seen(params, seen=False)

    @operation(
        access=Access.WRITE,
        params=MoveParams,
        result=Done,
        description="Move a message to another existing folder.",
    )
    async def move(self, params: MoveParams) -> Done:
        self.check_id(params.id)
        source, target = _folder(params.folder), _folder(params.to_folder)
        if source == target:
            raise InvalidInput(f"the message is already in {source!r}", field="to_folder")
        await self.store_move(source, params.id, target)
        return Done(detail=f"moved from {source} to {target}")

    async def describe(self, operation: str, params: BaseModel) -> str | None:
        """The message a write names by id, for the person's approval prompt: its
        folder, date, sender and subject (read like ``get_message``: nothing changes).
        The subject comes last: a stranger's long one ("… from your boss") is what the
        prompt cuts, never the facts before it."""
        if not isinstance(params, MessageRef):
            return None
        self.check_id(params.id)
        folder = _folder(params.folder)
        found = await self.load_message(folder, params.id, max_chars=1)
        sent = f", {found.date:%Y-%m-%d}" if found.date else ""
        sender = found.from_ or "no sender"
        return f"message in {folder}{sent}, from {sender}: “{found.subject or '(no subject)'}”"

    async def _set_seen(self, params: MessageRef, *, seen: bool) -> Done:
        self.check_id(params.id)
        changed = await self.store_seen(_folder(params.folder), params.id, seen=seen)
        state = "read" if seen else "unread"
        return Done(detail=f"marked {state}" if changed else f"already {state}")

    async def check(self) -> CheckResult:
        """What ``airlock credentials add`` prints: "1,234 messages, 12 unread in 3 folders"."""
        folders = await self.load_folders()
        total = sum(f.messages for f in folders)
        unread = sum(f.unread for f in folders)
        noun = "folder" if len(folders) == 1 else "folders"
        return CheckResult(
            ok=True, summary=f"{total:,} messages, {unread:,} unread in {len(folders)} {noun}"
        )

    def check_id(self, message_id: str) -> None:
        """Refuse an id that is not of this backend's shape before it reaches the service."""
        if not self.id_pattern.fullmatch(message_id):
            raise InvalidInput(
                f"{message_id!r} is not a {self.name} message id (they look like "
                f"{self.id_example!r}); take ids from list_messages or search",
                field="id",
            )

    # ------------------------------------------------------------------ backend

    @abc.abstractmethod
    async def load_folders(self) -> list[Folder]:
        """Every folder with its message and unread counts, INBOX first."""

    @abc.abstractmethod
    async def load_summaries(
        self, folder: str, *, limit: int, unread_only: bool, since: date | None
    ) -> list[MessageSummary]:
        """Up to *limit* messages of *folder*, newest first; *since* is a UTC day
        (:func:`airlock_mail.query.day_start`). Unknown folder: ``NotFound``."""

    @abc.abstractmethod
    async def search_folder(self, folder: str, query: Query, *, limit: int) -> list[MessageSummary]:
        """Up to *limit* messages of *folder* matching every term of *query*, newest first."""

    @abc.abstractmethod
    async def load_message(self, folder: str, message_id: str, *, max_chars: int) -> Message:
        """One message (see :func:`airlock_mail.mime.parse_message`); ``NotFound`` if absent."""

    @abc.abstractmethod
    async def load_unread_count(self, folder: str) -> int:
        """How many messages of *folder* are unread."""

    @abc.abstractmethod
    async def store_seen(self, folder: str, message_id: str, *, seen: bool) -> bool:
        """Set or clear the seen flag; return whether anything changed."""

    @abc.abstractmethod
    async def store_move(self, folder: str, message_id: str, to_folder: str) -> None:
        """Move the message to *to_folder*, which must exist (else ``NotFound``)."""


def _folder(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501); every other name is taken as written."""
    return INBOX if name.upper() == INBOX else name
