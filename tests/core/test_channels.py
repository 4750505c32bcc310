"""Which sent prompt belongs to which request: kept for recent prompts only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from airlock.framework.notifiers import Delivery, Notice, Notifier, Prompt
from airlock.security.channels import KEPT_DELIVERIES, Channels


class Numbered(Notifier):
    """A messenger that names each sent message by a growing number (as Telegram does)."""

    name = "numbered"

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, prompt: Prompt) -> Delivery:
        self.sent += 1
        return Delivery(notifier=self.name, ref=str(self.sent))

    async def notify(self, notice: Notice) -> None:
        pass


class Records:
    async def append(self, event: str, **fields: Any) -> object:
        return None


def prompt(request_id: str) -> Prompt:
    return Prompt(
        request_id=request_id,
        code="ABCD",
        title="Read mail",
        lines=[],
        reason="",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def test_an_agent_asking_without_end_does_not_grow_what_the_daemon_remembers() -> None:
    """Each prompt sent is remembered to bind a reply to it; an agent asking and
    withdrawing without end made that grow with every prompt, for the daemon's life."""
    channels = Channels({"numbered": Numbered()}, Records())

    async def flood() -> None:
        for n in range(KEPT_DELIVERIES + 500):
            await channels.send_prompt(prompt(f"req_{n}"))

    asyncio.run(flood())
    newest = KEPT_DELIVERIES + 500
    assert channels.request_for("numbered", str(newest)) == f"req_{newest - 1}"
    assert channels.request_for("numbered", "1") is None  # long expired: forgotten
    remembered = sum(
        channels.request_for("numbered", str(ref)) is not None for ref in range(1, newest + 1)
    )
    assert remembered == KEPT_DELIVERIES
