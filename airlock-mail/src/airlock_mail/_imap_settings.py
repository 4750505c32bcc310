"""Where an IMAP server is, how to reach it, and how to log in: the settings and
credentials of ``imap`` and of the providers built on it (re-exported by :mod:`.imap`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,253}")
# Special-use folders (RFC 6154) by the names people call them.
SPECIAL_USE_ALIASES: Mapping[str, tuple[bytes | str, ...]] = {
    "archive": (b"\\Archive",),
    "drafts": (b"\\Drafts",),
    "junk": (b"\\Junk",),
    "spam": (b"\\Junk",),
    "sent": (b"\\Sent",),
    "trash": (b"\\Trash",),
}
ADDRESS_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}$"


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerSettings(BaseModel):
    """Where the server is and how to reach it; shared by every IMAP-based connector."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="IMAP server host name, e.g. imap.example.com.")
    port: int = Field(993, ge=1, le=65535, description="IMAP port: 993 for tls, 143 otherwise.")
    security: Literal["tls", "starttls", "none"] = Field(
        "tls",
        description="tls (port 993), starttls (port 143), or none (only for this machine).",
    )
    ca_file: Path | None = Field(
        None, description="PEM file of a private CA to trust (a self-hosted server)."
    )
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for the server.")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.fullmatch(value):
            raise ValueError("must be a host name or IP address")
        return value

    @model_validator(mode="after")
    def _plain_only_on_loopback(self) -> ServerSettings:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                "security: none would send the password unencrypted; it is allowed only "
                "for a server on this machine (localhost, 127.0.0.1, ::1): use tls or starttls"
            )
        return self


class ImapSettings(ServerSettings):
    username: str = Field(
        min_length=1, max_length=320, description="Login name, often the email address."
    )


class AddressCredentials(BaseModel):
    """For providers whose login is the mail address and an app password (Gmail,
    iCloud); subclasses reword the descriptions, which ``credentials add`` prompts with."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(pattern=ADDRESS_PATTERN, description="Your mail address")
    app_password: SecretStr = Field(min_length=1, description="App password")


class ImapCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: SecretStr = Field(
        min_length=1,
        description="IMAP password (use an app password if your provider offers them)",
    )
