"""The ``icloud`` connector: iCloud Mail over IMAP, with an app-specific password.

Everything is the ``imap`` connector's (read-only wire guard, one-fetch summaries,
separate write connections); this module only knows iCloud: the server, that the login
is the iCloud address with an app-specific password (Apple refuses the account
password), and iCloud's folder names ("Sent Messages", "Deleted Messages", "Junk",
"Archive", "Drafts"), which the usual names (sent, trash, spam) also find.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, SecretStr

from airlock.plugin import AirlockError, ConnectorAuthError
from airlock_mail.imap import (
    ADDRESS_PATTERN,
    SPECIAL_USE_ALIASES,
    AddressCredentials,
    ImapConnector,
    ServerSettings,
)

__all__ = ["APP_PASSWORD_HELP", "ICloudConnector", "ICloudCredentials", "ICloudSettings"]

APP_PASSWORD_HELP = "https://support.apple.com/en-us/102654"  # noqa: S105 - a web page


class ICloudSettings(ServerSettings):
    host: str = Field("imap.mail.me.com", description="iCloud Mail's IMAP server.")


class ICloudCredentials(AddressCredentials):
    address: str = Field(
        pattern=ADDRESS_PATTERN,
        description="Your iCloud Mail address (you@icloud.com, @me.com or @mac.com)",
    )
    app_password: SecretStr = Field(
        min_length=1,
        description=(
            "App-specific password (account.apple.com > Sign-In and Security > "
            "App-Specific Passwords)"
        ),
    )


class ICloudConnector(ImapConnector):
    name = "icloud"
    title = "iCloud Mail"
    Settings = ICloudSettings
    Credentials = ICloudCredentials

    folder_aliases: ClassVar[Mapping[str, tuple[bytes | str, ...]]] = {
        **SPECIAL_USE_ALIASES,
        "sent": (b"\\Sent", "Sent Messages"),
        "trash": (b"\\Trash", "Deleted Messages"),
        "deleted": (b"\\Trash", "Deleted Messages"),
        "spam": (b"\\Junk", "Junk"),
        "junk": (b"\\Junk", "Junk"),
        "archive": (b"\\Archive", "Archive"),
        "drafts": (b"\\Drafts", "Drafts"),
    }

    def login_error(self, username: str, server_text: str) -> AirlockError:
        return ConnectorAuthError(
            f"iCloud Mail refused the login for {username!r}: {server_text}",
            hint=(
                "iCloud needs an app-specific password, not your Apple Account password: "
                f"create one ({APP_PASSWORD_HELP}) and run "
                f"`airlock credentials add {self.service}`"
            ),
        )
