"""The person's channels: one prompt fanned out to every active notifier, notices to all,
and which sent message belongs to which request (see docs/security.md).

One broken channel never stops the others: each send is bounded in time, its failure is
recorded in the channel's health (``airlock status``) and the audit line of the prompt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airlock.common.logs import get_logger
from airlock.framework.notifiers import Delivery, Notice, Notifier, Prompt
from airlock.security.audit import Auditor

log = get_logger("airlock.channels")

SEND_TIMEOUT = 15.0
AMBIGUOUS = ""
"""What a sent prompt's reference stands for when two prompts were given it."""
KEPT_DELIVERIES = 4096
"""Sent prompts remembered, newest first: far more than the requests that can wait at
once (a reply to an older prompt is to a request long expired). Without a bound an agent
asking and withdrawing without end grew the daemon's memory with every prompt."""


@dataclass
class _Channel:
    notifier: Notifier
    healthy: bool = True
    detail: str = ""


class Channels:
    def __init__(self, notifiers: Mapping[str, Notifier], audit: Auditor) -> None:
        self._channels = {name: _Channel(n) for name, n in notifiers.items()}
        self._deliveries: dict[tuple[str, str], str] = {}
        self._audit = audit

    def request_for(self, notifier: str, ref: str | None) -> str | None:
        """The request whose prompt *ref* is on *notifier*, if it is one of ours (and
        only one's: see ``_delivered``)."""
        if not ref:
            return None
        return self._deliveries.get((notifier, ref)) or None

    def carry_over(self, old: Channels) -> None:
        """Remember the prompts *old* sent on the channels kept (a reload or an unlock
        builds the channels anew): replies to prompts already on the phone still
        approve. Forgotten, every such reply was "not an open prompt", and no prompt was
        sent again."""
        kept = {key: rid for key, rid in old._deliveries.items() if key[0] in self._channels}
        kept.update(self._deliveries)
        self._deliveries = kept
        self._forget_oldest()

    def _delivered(self, notifier: str, ref: str, request_id: str) -> None:
        """Remember which request a sent prompt is for. Two prompts given one reference
        (Signal names a message by its millisecond) are neither's: a reply to it cannot
        say which the person read, so it approves nothing."""
        key = (notifier, ref)
        known = self._deliveries.get(key)
        self._deliveries[key] = request_id if known in (None, request_id) else AMBIGUOUS
        self._forget_oldest()

    def _forget_oldest(self) -> None:
        while len(self._deliveries) > KEPT_DELIVERIES:
            del self._deliveries[next(iter(self._deliveries))]

    def health(self) -> list[dict[str, Any]]:
        """Each channel: the last send's outcome, and what the notifier says of itself
        (e.g. "unreachable: ConnectError (retrying in 8s)" while its receive loop waits)."""
        health = []
        for name, ch in sorted(self._channels.items()):
            try:
                own = ch.notifier.health()
            except Exception as exc:
                own = {"ok": False, "detail": f"health failed: {type(exc).__name__}"}
            own_ok = bool(own.get("ok", True))
            detail = ch.detail if own_ok else str(own.get("detail") or "") or ch.detail
            health.append({"name": name, "ok": ch.healthy and own_ok, "detail": detail})
        return health

    async def send_prompt(self, prompt: Prompt) -> None:
        async def send(name: str, channel: _Channel) -> None:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a
                # cancellation that comes as the work finishes (the daemon's stop then
                # waits on a listener that goes on receiving).
                async with asyncio.timeout(SEND_TIMEOUT):
                    delivery: Delivery = await channel.notifier.send(prompt)
            except Exception as exc:  # one broken channel must not stop the others
                channel.healthy, channel.detail = False, f"send failed: {type(exc).__name__}"
                log.warning("notifier_send_failed", notifier=name, error=type(exc).__name__)
                await self._audit.append(
                    "approval_sent", request=prompt.request_id, notifier=name, ok=False
                )
                return
            channel.healthy, channel.detail = True, ""
            self._delivered(name, delivery.ref, prompt.request_id)
            await self._audit.append(
                "approval_sent", request=prompt.request_id, notifier=name, ok=True
            )

        await asyncio.gather(*(send(n, c) for n, c in self._channels.items()))

    async def notify_all(self, notice: Notice) -> None:
        await asyncio.gather(*(self.tell(name, notice) for name in self._channels))

    async def tell(self, name: str, notice: Notice) -> None:
        """A notice on one channel; a failure marks the channel unhealthy, nothing more."""
        channel = self._channels.get(name)
        if channel is None:
            return
        try:
            async with asyncio.timeout(SEND_TIMEOUT):  # not wait_for: see send_prompt
                await channel.notifier.notify(notice)
        except Exception as exc:
            channel.healthy, channel.detail = False, f"notify failed: {type(exc).__name__}"
