"""What a ``gcal`` service is configured with, and what the vault keeps for it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "CALENDAR_ID",
    "DEFAULT_API_ENDPOINT",
    "DEFAULT_AUTH_URI",
    "DEFAULT_TOKEN_URI",
    "READ_SCOPE",
    "WRITE_SCOPE",
    "CalendarId",
    "GcalCredentials",
    "GcalSettings",
]

DEFAULT_API_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105  # an address
DEFAULT_AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
READ_SCOPE = "https://www.googleapis.com/auth/calendar.readonly"
WRITE_SCOPE = "https://www.googleapis.com/auth/calendar.events"

# Calendar ids are e-mail-like ("primary", "me@example.com",
# "abc123@group.calendar.google.com", "en.usa#holiday@group.v.calendar.google.com").
CALENDAR_ID = r"^[A-Za-z0-9][A-Za-z0-9._%+#@-]{0,253}$"
CalendarId = Annotated[str, Field(pattern=CALENDAR_ID, description="A calendar id, or primary.")]
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _web_address(value: str) -> str:
    """https anywhere; plain http only to this machine (a test server or a local proxy).

    Tokens and the client secret travel to these addresses, so they must not go out in
    clear text.
    """
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return value
    raise ValueError("must be an https:// address (http:// only to 127.0.0.1 or localhost)")


class GcalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calendars: list[CalendarId] | None = Field(
        None,
        description="Calendar ids agents may use (others are refused); all when unset.",
    )
    write: bool = Field(
        False, description="Allow create_event and respond (each still needs its own approval)."
    )
    api_endpoint: str = Field(DEFAULT_API_ENDPOINT, description="Calendar API v3 base address.")
    token_uri: str = Field(DEFAULT_TOKEN_URI, description="OAuth token endpoint.")
    auth_uri: str = Field(DEFAULT_AUTH_URI, description="OAuth authorization endpoint.")

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        # googleapiclient joins paths onto it: it must end with a slash.
        return _web_address(value).rstrip("/") + "/"

    @field_validator("token_uri", "auth_uri")
    @classmethod
    def _oauth_address(cls, value: str) -> str:
        return _web_address(value)

    def scopes(self) -> list[str]:
        """Read-only unless writes are enabled: Google enforces it, not only Airlock."""
        return [READ_SCOPE, WRITE_SCOPE] if self.write else [READ_SCOPE]

    def allows(self, calendar: str) -> bool:
        return self.calendars is None or calendar in self.calendars


class GcalCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(
        min_length=1, max_length=512, description="OAuth client id (…apps.googleusercontent.com)"
    )
    client_secret: SecretStr = Field(min_length=1, description="OAuth client secret")
    refresh_token: SecretStr = Field(
        min_length=1, description="Refresh token (from `airlock gcal auth`)"
    )
