"""The notifier contract: how an approval prompt reaches the person (DESIGN §2, §10).

A notifier only transports. Core renders the prompt, decides what a reply means, checks
the code and binds it to the request; the notifier sends text and yields what came back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from airlock.connectors import NoCredentials, NoSettings


class Prompt(BaseModel):
    """One approval prompt, already rendered by core; the same for every channel."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    code: str
    title: str
    lines: list[tuple[str, str]]
    reason: str
    expires_at: datetime

    def as_text(self) -> str:
        """Plain-text rendering; channels with markup escape each piece themselves."""
        body = [self.title, ""]
        body += [f"{label}: {value}" for label, value in self.lines]
        body += ["", "Reason given by the agent (untrusted):", f"> {self.reason}"]
        body += ["", f"Reply with your 6-digit code to approve {self.code}, or 'deny'."]
        return "\n".join(body)


class Delivery(BaseModel):
    """A reference to a sent prompt, used to bind replies to it."""

    notifier: str
    ref: str


class Reply(BaseModel):
    sender: str
    text: str
    in_reply_to: str | None = None
    received_at: datetime


class Notice(BaseModel):
    """An informational message (lockout, approved, denied) with no reply expected."""

    text: str
    request_id: str | None = None


class Notifier:
    """Base class of notifiers. ``name`` is the id used in config and audit lines."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    Credentials: ClassVar[type[BaseModel]] = NoCredentials

    def __init__(self, settings: BaseModel, credentials: BaseModel) -> None:
        self.settings = settings
        self.credentials = credentials

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    async def send(self, prompt: Prompt) -> Delivery:
        raise NotImplementedError

    def replies(self) -> AsyncIterator[Reply]:
        """Replies as they arrive, from the configured sender only. Runs until closed."""
        raise NotImplementedError

    async def notify(self, notice: Notice) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Stop receiving and release connections. Idempotent."""

    def health(self) -> dict[str, Any]:
        """What ``airlock status`` shows for this channel."""
        return {"ok": True}
