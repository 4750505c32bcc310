"""The ``gmail`` connector: Gmail over IMAP, with Gmail's own search and labels.

It is the ``imap`` connector (read-only wire guard, one-fetch summaries, separate write
connections) plus what Gmail adds, used when the server advertises ``X-GM-EXT-1``:

- ``search`` takes Gmail's full search language (``has:attachment newer_than:2d``,
  ``label:work``, ``OR``, ``-from:x``) and sends it whole, as one quoted string or
  literal, to ``UID SEARCH CHARSET UTF-8 X-GM-RAW``; the agent's text never becomes
  IMAP syntax. Without the extension it falls back to the shared syntax.
- summaries and messages carry the labels (``X-GM-LABELS``);
- Gmail's folders (``[Gmail]/All Mail``, ``[Gmail]/Trash``, localised as
  ``[Google Mail]/...`` in some countries) are also found as "All Mail", "Trash",
  "Spam", "Sent", "Drafts", "Starred", "Important", through their special-use flags;
- a refused login is explained: a wrong app password, a Google account password where
  an app password is needed, IMAP turned off, or a sign-in Google wants confirmed in
  a browser are different problems with different fixes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, SecretStr, field_validator

from airlock.plugin import Access, AirlockError, ConnectorAuthError, ConnectorError, operation
from airlock_mail.imap import (
    ADDRESS_PATTERN,
    SPECIAL_USE_ALIASES,
    AddressCredentials,
    ImapConnector,
    SearchCriteria,
    ServerSettings,
    imap_string,
    query_criteria,
)
from airlock_mail.model import INBOX, MessageList, MessageSummary, SearchParams
from airlock_mail.query import parse_query

if TYPE_CHECKING:
    from airlock_mail.imap import ImapSession

__all__ = [
    "APP_PASSWORDS",
    "GmailConnector",
    "GmailCredentials",
    "GmailSettings",
    "gmail_raw_criteria",
]

APP_PASSWORDS = "https://myaccount.google.com/apppasswords"
ENABLE_IMAP = "https://support.google.com/mail/answer/7126229"
WEB_LOGIN = "https://support.google.com/mail/accounts/answer/78754"
GMAIL_EXTENSIONS = b"X-GM-EXT-1"

_IMAP_DISABLED = re.compile(r"not enabled for IMAP|IMAP access is disabled", re.IGNORECASE)
_APP_PASSWORD_NEEDED = re.compile(r"Application-specific password required", re.IGNORECASE)
_WEB_LOGIN = re.compile(r"log ?in via your web browser|WEBALERT", re.IGNORECASE)


class GmailSettings(ServerSettings):
    host: str = Field("imap.gmail.com", description="Gmail's IMAP server.")


class GmailCredentials(AddressCredentials):
    address: str = Field(pattern=ADDRESS_PATTERN, description="Your Gmail address (you@gmail.com)")
    app_password: SecretStr = Field(
        min_length=1,
        description=(
            f"Gmail app password: 16 letters from {APP_PASSWORDS} (needs 2-Step Verification)"
        ),
    )

    @field_validator("app_password")
    @classmethod
    def _without_spaces(cls, value: SecretStr) -> SecretStr:
        """Google shows app passwords in groups of four; the spaces are not part of it."""
        return SecretStr(value.get_secret_value().replace(" ", ""))


class GmailConnector(ImapConnector):
    name = "gmail"
    title = "Gmail"
    Settings = GmailSettings
    Credentials = GmailCredentials

    folder_aliases: ClassVar[Mapping[str, tuple[bytes | str, ...]]] = {
        **SPECIAL_USE_ALIASES,
        "all mail": (b"\\All",),
        "archive": (b"\\All",),
        "starred": (b"\\Flagged",),
        "important": (b"\\Important",),
        "bin": (b"\\Trash",),
    }

    def summary_extras(self, session: ImapSession) -> tuple[bytes, ...]:
        return (b"X-GM-LABELS",) if session.has(GMAIL_EXTENSIONS) else ()

    @operation(
        access=Access.READ,
        params=SearchParams,
        result=MessageList,
        description=(
            "Search a folder with Gmail's search syntax (from:, to:, subject:, label:, "
            "has:attachment, is:unread, newer_than:2d, OR, -word), newest first."
        ),
    )
    async def search(self, params: SearchParams) -> MessageList:
        folder = INBOX if params.folder.upper() == INBOX else params.folder

        def run(session: ImapSession) -> list[MessageSummary]:
            criteria = self._criteria(session, params.query)
            return self._page(session, folder, criteria, params.limit)

        return MessageList(messages=await self._read(run))

    def _criteria(self, session: ImapSession, text: str) -> SearchCriteria:
        if session.has(GMAIL_EXTENSIONS):
            return gmail_raw_criteria(text)
        return query_criteria(parse_query(text), now=self.now())

    def login_error(self, username: str, server_text: str) -> AirlockError:
        """Gmail's NO answers to LOGIN, told apart (each needs a different fix)."""
        if _IMAP_DISABLED.search(server_text):
            return ConnectorError(
                f"IMAP access is turned off for {username}: {server_text}",
                hint=(
                    "turn it on in Gmail: Settings > See all settings > Forwarding and "
                    f"POP/IMAP > Enable IMAP ({ENABLE_IMAP}); Workspace accounts may need "
                    "their administrator"
                ),
            )
        if _APP_PASSWORD_NEEDED.search(server_text):
            return ConnectorAuthError(
                f"Gmail wants an app password for {username}, not the Google account password",
                hint=(
                    f"create one at {APP_PASSWORDS} and run "
                    f"`airlock credentials add {self.service}`"
                ),
            )
        if _WEB_LOGIN.search(server_text):
            return ConnectorAuthError(
                f"Google blocked this sign-in for {username} until it is confirmed: {server_text}",
                hint=f"sign in at https://mail.google.com once, then try again ({WEB_LOGIN})",
            )
        return ConnectorAuthError(
            f"Gmail refused the address or app password for {username}: {server_text}",
            hint=(
                f"check the address; create a new app password at {APP_PASSWORDS} "
                f"and run `airlock credentials add {self.service}`"
            ),
        )


def gmail_raw_criteria(text: str) -> SearchCriteria:
    """Gmail's own search language, passed whole as one string to X-GM-RAW (quoted or a
    literal, never IMAP syntax)."""
    return SearchCriteria(args=[b"X-GM-RAW", imap_string(text)], utf8=True)
