"""The ``signal`` notifier: prompts sent through signal-cli-rest-api, answers read back.

It only transports (see docs/plugins.md): a quote-reply to a prompt becomes a Reply bound to the
prompt's send timestamp, a 👎 reaction to it a "👎" reply, and core decides what either
means. signal-cli-rest-api has no credentials of its own (it listens on loopback), so
this notifier keeps nothing in the vault.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import Field

from airlock.plugin import ApiSettings, Delivery, HttpNotifier, Notice, Prompt, Reply
from airlock_notify_signal._envelopes import read_envelope
from airlock_notify_signal._receiving import Receiver
from airlock_notify_signal._render import notice_text, prompt_text
from airlock_notify_signal._rest_api import SignalRestApi

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


class SignalNotifier(HttpNotifier[SignalSettings, int]):
    name = "signal"
    title = "Signal (signal-cli-rest-api)"
    Settings = SignalSettings

    def prepare(self) -> None:
        self._api = self.opened(
            SignalRestApi(self.config.api_base, self.config.number, transport=self.transport)
        )
        self._receiver = Receiver(
            self._api, self.backoff, mode=self.config.receive, wait=self.config.poll_timeout
        )

    async def send(self, prompt: Prompt) -> Delivery:
        timestamp = await self._api.send(self.config.recipient, prompt_text(prompt))
        self.sent += 1
        self.remember(prompt.request_id, timestamp)
        return Delivery(notifier=self.name, ref=str(timestamp))

    async def notify(self, notice: Notice) -> None:
        prompt = self.recall(notice.request_id)
        quote = (
            {"quote_timestamp": prompt, "quote_author": self.config.number}
            if prompt is not None
            else {}
        )
        await self._api.send(self.config.recipient, notice_text(notice), **quote)
        self.sent += 1

    async def replies(self) -> AsyncIterator[Reply]:
        async with contextlib.aclosing(self._receiver.items()) as items:
            async for item in items:
                reply = read_envelope(
                    item,
                    recipient=self.config.recipient,
                    recipient_uuid=self.config.recipient_uuid,
                    not_before=self.not_before,
                )
                if reply is not None:
                    yield reply

    def health(self) -> dict[str, Any]:
        health = super().health()
        if self._receiver.mode_in_use:
            health["receive"] = self._receiver.mode_in_use
        return health
