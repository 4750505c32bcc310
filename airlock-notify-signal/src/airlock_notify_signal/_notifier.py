"""The ``signal`` notifier: prompts sent through signal-cli-rest-api, or through
signal-cli's own JSON-RPC socket (``socket``), answers read back.

It only transports (see docs/plugins.md): a quote-reply to a prompt becomes a Reply bound to the
prompt's send timestamp, a 👎 reaction to it a "👎" reply, and core decides what either
means. Neither has credentials of its own, so this notifier keeps nothing in the vault:
signal-cli-rest-api answers anyone who reaches its loopback port, the socket only the
users its file permissions let in (``_cli_socket``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from airlock.plugin import (
    ApiSettings,
    Delivery,
    HttpNotifier,
    Notice,
    Notifier,
    Prompt,
    Reply,
)
from airlock_notify_signal._cli_socket import SignalCli
from airlock_notify_signal._envelopes import read_envelope
from airlock_notify_signal._receiving import Receiver
from airlock_notify_signal._render import notice_text, prompt_text
from airlock_notify_signal._rest_api import SignalRestApi
from airlock_notify_signal._waiting import Person

__all__ = ["SignalNotifier", "SignalSettings"]

DEFAULT_API_BASE = "http://127.0.0.1:8080"
E164 = r"^\+[1-9][0-9]{6,14}$"


class SignalSettings(ApiSettings):
    """``notifiers.signal`` in config.yaml; ``airlock signal setup`` checks and fills it."""

    api_base: str = Field(DEFAULT_API_BASE, description="Where signal-cli-rest-api listens.")
    number: str = Field(pattern=E164, description="The Signal account that sends prompts.")
    recipient: str = Field(pattern=E164, description="Your number; nobody else is listened to.")
    recipient_uuid: str | None = Field(
        None, max_length=64, description="Your Signal ACI, for messages that hide the number."
    )
    receive: Literal["auto", "poll", "websocket"] = Field(
        "auto", description="auto asks GET /v1/about (json-rpc mode means the WebSocket)."
    )
    poll_timeout: int = Field(10, ge=1, le=60, description="Seconds one receive call waits.")
    socket: str | None = Field(
        None,
        max_length=107,
        description="signal-cli's JSON-RPC socket (signal-cli daemon --socket PATH), used "
        "instead of signal-cli-rest-api: only users its permissions let in reach it.",
    )

    @field_validator("socket")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must be an absolute path")
        if value is not None and "\0" in value:  # no path can: connecting raises ValueError
            raise ValueError("must not hold a NUL character")
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        if self.socket is not None and self.model_fields_set & {"api_base", "receive"}:
            raise ValueError("socket replaces api_base and receive: set one or the other")
        return self


class SignalNotifier(HttpNotifier[SignalSettings, int]):
    name = "signal"
    title = "Signal (signal-cli)"
    Settings = SignalSettings

    def prepare(self) -> None:
        self._cli: SignalCli | None = None
        self._receiver: Receiver | None = None
        self._api: SignalRestApi | SignalCli
        self._received: Callable[[], AsyncGenerator[Any, None]]
        person = Person(self.config.recipient, self.config.recipient_uuid)
        if self.config.socket is not None:
            cli = self._cli = self._api = SignalCli(
                self.config.socket, self.config.number, person=person
            )
            self._received = lambda: cli.items(self.backoff)
        else:
            self._api = rest = self.opened(
                SignalRestApi(self.config.api_base, self.config.number, transport=self.transport)
            )
            self._receiver = Receiver(
                rest,
                self.backoff,
                mode=self.config.receive,
                wait=self.config.poll_timeout,
                person=person,
            )
            self._received = self._receiver.items
        self._closing: set[asyncio.Task[None]] = set()

    async def send(self, prompt: Prompt) -> Delivery:
        timestamp = await self._api.send(self.config.recipient, prompt_text(prompt))
        self.sent += 1
        self.remember(prompt.request_id, timestamp)
        return Delivery(notifier=self.name, ref=str(timestamp))

    async def notify(self, notice: Notice) -> None:
        prompt = self.recall(notice.request_id)
        await self._api.send(
            self.config.recipient,
            notice_text(notice),
            quote_timestamp=prompt,
            quote_author=self.config.number if prompt is not None else None,
        )
        self.sent += 1

    def conversation(self) -> tuple[Any, ...]:
        """The account and the person: the prompts this notifier remembers are messages
        of their conversation (a reply quotes one by its timestamp)."""
        return (*self._account(), self.config.recipient, self.config.recipient_uuid)

    def _account(self) -> tuple[Any, ...]:
        return (self.config.api_base, self.config.socket, self.config.number)

    def carry_over(self, old: Notifier) -> None:
        """Also, from the same account, what *old* received and never read (a message
        that came while core handled the one before): Signal hands a message over once,
        and the person's reply would be lost with the old notifier. signal-cli's socket
        is taken over whole: its connection keeps receiving into what waits to be read,
        and *old* (still sending the notices of its last approvals) sends through it."""
        super().carry_over(old)
        if not isinstance(old, SignalNotifier) or old._account() != self._account():
            return
        if old._receiver is not None and self._receiver is not None:
            self._receiver.unread.extendleft(reversed(old._receiver.unread))
            old._receiver.unread.clear()
        # The connection sorts what it receives by who wrote it: only for the same person.
        if old._cli is not None and self._cli is not None and self.same_conversation(old):
            own, cli, old._cli = self._cli, old._cli, None  # now this notifier's to close
            self._cli = self._api = cli
            self._received = lambda: cli.items(self.backoff)
            # A send may have opened it, and may still be waiting for its answer.
            task = asyncio.get_running_loop().create_task(own.aclose(when_idle=True))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def replies(self) -> AsyncIterator[Reply]:
        async with contextlib.aclosing(self._received()) as items:
            async for item in items:
                if (reply := self._reply(item)) is not None:
                    yield reply

    def _reply(self, item: Any) -> Reply | None:
        return read_envelope(
            item,
            recipient=self.config.recipient,
            recipient_uuid=self.config.recipient_uuid,
            not_before=self.not_before,
        )

    async def close(self) -> None:
        await super().close()
        if self._cli is not None:
            await self._cli.aclose()
        await asyncio.gather(*self._closing, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        health = super().health()
        mode = "socket" if self._cli is not None else self._receiver and self._receiver.mode_in_use
        if mode:
            health["receive"] = mode
        return health
