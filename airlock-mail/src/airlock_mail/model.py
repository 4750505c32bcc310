"""The mail model every mail backend shares (maildir, imap, gmail, icloud).

Two kinds of models live here:

- *params* models for the eight operations listed in docs/mail.md. Everything in them comes from
  the agent, which may be prompt-injected, so every string is bounded and checked here,
  once, before any backend sees it: folder names carry no control characters (CR/LF
  would split an IMAP command line), ids match a conservative pattern (each backend
  narrows it further), and queries are length-limited.
- *result* models: what an operation returns. They serialise by alias, so the JSON an
  agent reads says ``"from"`` although Python cannot name a field that.

Public names here are a contract for the other backends; add fields, don't rename them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from airlock.plugin import UNTRUSTED, Params, UntrustedText

# What redact-codes masks codes in, besides subject, snippet and text: every field a
# sender wrote (a service mails a code in the From name or the Subject header as often
# as in the body). UntrustedText marks one string; UNTRUSTED a list or a dict whole.
StrangerText = Annotated[list[str], UNTRUSTED]

__all__ = [
    "FOLDER_MAX_LENGTH",
    "ID_MAX_LENGTH",
    "INBOX",
    "QUERY_MAX_LENGTH",
    "Attachment",
    "CountUnreadParams",
    "Folder",
    "FolderList",
    "FolderName",
    "GetMessageParams",
    "Limit",
    "ListFoldersParams",
    "ListMessagesParams",
    "Message",
    "MessageId",
    "MessageList",
    "MessageRef",
    "MessageSummary",
    "MoveParams",
    "QueryText",
    "SearchParams",
    "UnreadCount",
]

INBOX = "INBOX"
FOLDER_MAX_LENGTH = 200
ID_MAX_LENGTH = 200
QUERY_MAX_LENGTH = 500

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    """CR, LF and NUL end or split protocol lines; no mail name or query needs them."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (CR, LF, NUL, tab, ...)")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


FolderName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=FOLDER_MAX_LENGTH),
    AfterValidator(_no_control_characters),
    AfterValidator(_not_blank),
]
"""A folder name as the agent gives it: ``"INBOX"``, ``"Archive"``, ``"[Gmail]/Sent Mail"``."""

MessageId = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._,=+\-\\]*$",
    ),
]
"""A message id as the agent gives it back. The outer bound for every backend (no path
separators, no spaces, no quotes); each backend checks its own stricter pattern too."""

QueryText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=QUERY_MAX_LENGTH),
    AfterValidator(_no_control_characters),
]
"""A search in the shared query syntax (see :mod:`airlock_mail.query`)."""

Limit = Annotated[int, Field(ge=1, le=100, description="How many messages at most (1-100).")]

# ---------------------------------------------------------------------------- params


class ListFoldersParams(Params):
    """``list_folders`` takes no parameters."""


class ListMessagesParams(Params):
    folder: FolderName = Field(INBOX, description="Folder to list.")
    limit: Limit = 20
    unread_only: bool = Field(False, description="Only messages not yet read.")
    since: date | None = Field(
        None, description="Only messages dated on or after this day (UTC), YYYY-MM-DD."
    )


class SearchParams(Params):
    query: QueryText = Field(
        description=(
            "Search terms, all must match: from:, to:, subject:, is:unread, is:read, "
            "has:attachment, newer_than:7d, older_than:1y, after:2025-01-31, before:, "
            '"a phrase", words.'
        )
    )
    folder: FolderName = Field(INBOX, description="Folder to search.")
    limit: Limit = 20


class GetMessageParams(Params):
    id: MessageId = Field(description="Message id from list_messages or search.")
    folder: FolderName = Field(INBOX, description="Folder the message is in.")
    max_chars: int = Field(
        20_000, ge=1, le=200_000, description="Cut the text after this many characters."
    )


class CountUnreadParams(Params):
    folder: FolderName = Field(INBOX, description="Folder to count.")


class MessageRef(Params):
    """One message: its id and the folder it is in (ids are unique per folder)."""

    id: MessageId = Field(description="Message id from list_messages or search.")
    folder: FolderName = Field(INBOX, description="Folder the message is in.")


class MoveParams(MessageRef):
    to_folder: FolderName = Field(description="Existing folder to move the message to.")


# ---------------------------------------------------------------------------- results


class MailModel(BaseModel):
    """Base of the result models: JSON uses the aliases (``"from"``), Python the names."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class Attachment(MailModel):
    filename: UntrustedText = Field(description="File name as the sender gave it; empty if none.")
    content_type: str
    size: int = Field(ge=0, description="Decoded size in bytes.")


class MessageSummary(MailModel):
    id: str
    folder: str
    from_: UntrustedText = Field("", alias="from", description='Sender, "Name <address>".')
    to: StrangerText = Field(default_factory=list)
    cc: StrangerText = Field(default_factory=list)
    subject: str = ""
    date: AwareDatetime | None = Field(None, description="The Date header; null if missing.")
    unread: bool
    has_attachments: bool = False
    size: int = Field(0, ge=0, description="Size of the raw message in bytes.")
    snippet: str = Field("", description="The start of the text, whitespace collapsed.")
    labels: list[str] = Field(default_factory=list, description="Gmail labels; empty elsewhere.")


class Message(MessageSummary):
    reply_to: StrangerText = Field(default_factory=list)
    message_id: str = Field("", description="The Message-ID header.")
    headers: Annotated[dict[str, str], UNTRUSTED] = Field(
        default_factory=dict, description="A useful subset of the headers, decoded."
    )
    text: str = Field("", description="The plain text, or the HTML rendered to text.")
    text_truncated: bool = Field(False, description="True if text was cut at max_chars.")
    attachments: list[Attachment] = Field(default_factory=list)


class Folder(MailModel):
    name: str
    messages: int = Field(ge=0)
    unread: int = Field(ge=0)


class FolderList(MailModel):
    folders: list[Folder]


class MessageList(MailModel):
    messages: list[MessageSummary]


class UnreadCount(MailModel):
    folder: str
    unread: int = Field(ge=0)
