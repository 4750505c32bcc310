"""Received messages waiting to be read: the person's apart from everyone else's.

signal-cli's socket and signal-cli-rest-api's WebSocket push each message as it comes,
and Airlock reads them at once, whatever core is doing with the one before: the socket
carries the answers to sends too, and signal-cli-rest-api drops a message its WebSocket
cannot take at once (it keeps none). So messages wait here, and the wait is bounded.
Anyone who knows the number can write to it, as fast as Signal lets them: under one
bound for all, a burst would fill it and the person's reply, their code, would be
dropped. The person's messages therefore wait apart, each kind bounded on its own, and
all are read in the order they came:

- the person's (sent by ``recipient`` or ``recipient_uuid``, as ``_envelopes`` decides;
  Signal authenticates the sender, so a stranger cannot pass for them): at most
  :data:`MAX_PERSON_WAITING`; over it the oldest goes, as the newest is the reply the
  person waits on;
- everyone else's (strangers, other members of a group, the account's own linked
  devices, which send nothing the notifier reads): at most :data:`MAX_WAITING` messages
  and :data:`MAX_WAITING_BYTES`; over either the one arriving goes. Core only audits
  them (``reply_ignored``, throttled).

What is dropped is logged with its lane and the reason, never its content or sender: the
first drop of a run (``signal_receive_dropping``), and how many went
(``signal_receive_dropped``) once a message of that lane is let in again or receiving
ends.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

from airlock.plugin import get_logger
from airlock_notify_signal._envelopes import sent_by_person

__all__ = [
    "ENDED",
    "MAX_PERSON_WAITING",
    "MAX_WAITING",
    "MAX_WAITING_BYTES",
    "Person",
    "Waiting",
]

log = get_logger("airlock.signal")

MAX_WAITING = 1000
"""Messages from anyone but the person waiting to be read; more are dropped."""
MAX_WAITING_BYTES = 16 << 20
"""Their size in all (16 MiB, as received); an ordinary message is a few KiB, so the
count binds first unless a stranger sends large ones."""
MAX_PERSON_WAITING = 100
"""The person's messages waiting to be read; more drop the oldest. The person writes by
hand, and their app adds a receipt or a typing notice or two per message: while the
notifier works through what waits (others' messages, which core only audits, take
well under a millisecond each; a send to Signal, a second or so), far fewer arrive.
Each is at most a line or frame long (1 MiB), so this also bounds their memory."""
ENDED = object()
"""What :meth:`Waiting.get` returns once receiving ended and nothing waits."""


@dataclass(frozen=True)
class Person:
    """Who the notifier listens to: ``recipient`` and, if known, ``recipient_uuid``
    (None for a link that only sends)."""

    number: str | None
    uuid: str | None = None

    def wrote(self, item: Any) -> bool:
        """Whether *item* (``{"envelope": ..., "account": ...}`` as received) is theirs."""
        envelope = item.get("envelope") if isinstance(item, dict) else None
        if not isinstance(envelope, dict):
            return False
        number = envelope.get("sourceNumber") or envelope.get("source")
        return sent_by_person(
            number, envelope.get("sourceUuid"), recipient=self.number, recipient_uuid=self.uuid
        )


class Waiting:
    """Messages waiting to be read (see the module's docstring), until :meth:`end`."""

    def __init__(self) -> None:
        self._order = itertools.count()
        self._person: deque[tuple[int, Any]] = deque()
        self._others: deque[tuple[int, Any, int]] = deque()
        self._others_bytes = 0
        self._dropped = {"person": 0, "others": 0}
        self._ended = False
        self._arrived = asyncio.Event()

    def put(self, item: Any, size: int, *, person: bool) -> None:
        """Queue *item* (*size*: its length as received), the person's if *person*."""
        if self._ended:
            return
        if person:
            if len(self._person) >= MAX_PERSON_WAITING:
                self._person.popleft()
                self._drop("person", f"over {MAX_PERSON_WAITING} waiting: the oldest")
            else:
                self._let_in("person")
            self._person.append((next(self._order), item))
        elif len(self._others) >= MAX_WAITING:
            self._drop("others", f"over {MAX_WAITING} waiting")
            return
        elif self._others_bytes + size > MAX_WAITING_BYTES:
            self._drop("others", f"over {MAX_WAITING_BYTES >> 20} MiB waiting")
            return
        else:
            self._let_in("others")
            self._others.append((next(self._order), item, size))
            self._others_bytes += size
        self._arrived.set()

    def end(self) -> None:
        """Nothing more comes (the connection, or receiving, ended): what waits is still
        read, then :data:`ENDED`."""
        if not self._ended:
            self._ended = True
            self._let_in("person")
            self._let_in("others")
            self._arrived.set()

    def take_all(self) -> list[Any]:
        """Every message waiting, in the order they came, and none left."""
        person = [(order, item) for order, item in self._person]
        others = [(order, item) for order, item, _ in self._others]
        self._person.clear()
        self._others.clear()
        self._others_bytes = 0
        return [item for _, item in sorted(person + others, key=lambda pair: pair[0])]

    async def get(self) -> Any:
        """The message that came next; :data:`ENDED` once it ended and nothing is left."""
        while True:
            if self._person and (not self._others or self._person[0][0] < self._others[0][0]):
                return self._person.popleft()[1]
            if self._others:
                _, item, size = self._others.popleft()
                self._others_bytes -= size
                return item
            if self._ended:
                return ENDED
            self._arrived.clear()
            await self._arrived.wait()

    def _drop(self, lane: str, why: str) -> None:
        if not self._dropped[lane]:
            log.warning("signal_receive_dropping", lane=lane, why=why)
        self._dropped[lane] += 1

    def _let_in(self, lane: str) -> None:
        """A run of drops in *lane* is over: say how many went."""
        if self._dropped[lane]:
            log.warning("signal_receive_dropped", lane=lane, count=self._dropped[lane])
            self._dropped[lane] = 0
