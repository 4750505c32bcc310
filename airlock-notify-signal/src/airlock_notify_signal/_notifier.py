"""The ``signal`` notifier: prompts sent through signal-cli-rest-api, answers read back.

It only transports (DESIGN §10): a quote-reply to a prompt becomes a Reply bound to the
prompt's send timestamp, a 👎 reaction to it a "👎" reply, and core decides what either
means. signal-cli-rest-api has no credentials of its own (it listens on loopback), so
this notifier keeps nothing in the vault.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from airlock.plugin import ApiSettings, Delivery, Notice, Notifier, Prompt, Reply, Sleep
from airlock_notify_signal._envelopes import read_envelope
from airlock_notify_signal._receiving import Receiver
from airlock_notify_signal._render import notice_text, prompt_text
from airlock_notify_signal._rest_api import SignalRestApi

__all__ = ["SignalNotifier", "SignalSettings"]

DEFAULT_API_BASE = "http://127.0.0.1:8080"
BACKLOG_SECONDS = 60.0
REMEMBERED_PROMPTS = 500
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


class SignalNotifier(Notifier):
    name = "signal"
    title = "Signal (signal-cli-rest-api)"
    Settings = SignalSettings

    def __init__(
        self,
        settings: BaseModel,
        credentials: BaseModel,
        *,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(settings, credentials)
        self.config = SignalSettings.model_validate(settings)
        self._api = SignalRestApi(self.config.api_base, self.config.number, transport=transport)
        self._backoff = self.config.backoff(sleep)
        self._receiver = Receiver(
            self._api, self._backoff, mode=self.config.receive, wait=self.config.poll_timeout
        )
        self._not_before = clock() - BACKLOG_SECONDS
        self._prompts: OrderedDict[str, int] = OrderedDict()
        self._sent = 0

    async def send(self, prompt: Prompt) -> Delivery:
        timestamp = await self._api.send(self.config.recipient, prompt_text(prompt))
        self._sent += 1
        self._prompts[prompt.request_id] = timestamp
        while len(self._prompts) > REMEMBERED_PROMPTS:
            self._prompts.popitem(last=False)
        return Delivery(notifier=self.name, ref=str(timestamp))

    async def notify(self, notice: Notice) -> None:
        prompt = self._prompts.get(notice.request_id) if notice.request_id else None
        quote = (
            {"quote_timestamp": prompt, "quote_author": self.config.number}
            if prompt is not None
            else {}
        )
        await self._api.send(self.config.recipient, notice_text(notice), **quote)
        self._sent += 1

    async def replies(self) -> AsyncIterator[Reply]:
        async with contextlib.aclosing(self._receiver.items()) as items:
            async for item in items:
                reply = read_envelope(
                    item,
                    recipient=self.config.recipient,
                    recipient_uuid=self.config.recipient_uuid,
                    not_before=self._not_before,
                )
                if reply is not None:
                    yield reply

    async def close(self) -> None:
        self._backoff.close()
        await self._api.aclose()

    def health(self) -> dict[str, Any]:
        health = {**self._backoff.health(), "sent": self._sent}
        if self._receiver.mode_in_use:
            health["receive"] = self._receiver.mode_in_use
        return health
