"""The notifier contract: how an approval prompt reaches the person (see docs/plugins.md).

A notifier only transports. Core renders the prompt, decides what a reply means, checks
the code and binds it to the request; the notifier sends text and yields what came back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from airlock.framework.connectors import NoCredentials, NoSettings


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
    """What came back on a channel. ``in_reply_to`` is the ``Delivery.ref`` it answers.

    ``known_sender`` is False for a message from anyone but the configured person: the
    notifier still yields it (it has no audit log of its own), and core records it and
    does nothing else with it.
    """

    sender: str
    text: str
    in_reply_to: str | None = None
    received_at: datetime
    known_sender: bool = True


class Notice(BaseModel):
    """An informational message (lockout, approved, denied) with no reply expected.

    ``outcome`` is set when the notice decides a request, so a channel that can edit the
    request's prompt in place (Telegram) can show the outcome there.
    """

    text: str
    request_id: str | None = None
    outcome: Literal["approved", "denied"] | None = None


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
        """Replies as they arrive. Runs until closed.

        Messages from anyone but the configured sender are yielded with
        ``known_sender=False`` (core audits and ignores them). Connection problems are
        retried inside, with back-off, and shown by :meth:`health`; they do not end it.
        """
        raise NotImplementedError

    async def notify(self, notice: Notice) -> None:
        raise NotImplementedError

    def carry_over(self, old: Notifier) -> None:
        """Take over what *old* knew of the conversation: *old* is the notifier of this
        name that a reload (or an unlock) replaces with this one. Called once, after
        *old*'s replies stopped (the reply it was handling was handled to the end, unless
        that took over a minute: then it was cut off) and before this one's
        :meth:`replies` starts; *old* is closed only afterwards. What to take is the
        notifier's: where its updates go on from (an offset past every update *old*
        handed on, and no further), what it received and did not hand on, what it sent.
        Take nothing from another chat or account. The default takes nothing."""

    async def close(self) -> None:
        """Stop receiving and release connections. Idempotent."""

    def health(self) -> dict[str, Any]:
        """What ``airlock status`` shows for this channel."""
        return {"ok": True}
