from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

from pydantic import BaseModel

from airlock.framework.notifiers import Delivery, Notice, Notifier, Prompt, Reply
from airlock.security.prompts import untrusted_line

NOTICE_LIMIT = 1000


class ConsoleNotifier(Notifier):
    """Writes prompts and notices to the daemon's stderr. Always available.

    It yields no replies: on the terminal the person answers with ``airlock approve CODE``,
    which reaches the daemon through its socket.
    """

    name = "console"
    title = "Daemon terminal"

    def __init__(
        self, settings: BaseModel, credentials: BaseModel, *, stream: TextIO | None = None
    ) -> None:
        super().__init__(settings, credentials)
        self._stream = stream
        self._closed = asyncio.Event()
        self._sent = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    async def send(self, prompt: Prompt) -> Delivery:
        text = prompt.as_text()
        hint = f"Approve on this machine with: airlock approve {prompt.code}"
        self._write(f"\n{'=' * 60}\n{text}\n{hint}\n{'=' * 60}\n")
        self._sent += 1
        return Delivery(notifier=self.name, ref=prompt.request_id)

    async def notify(self, notice: Notice) -> None:
        self._write(f"[airlock] {untrusted_line(notice.text, NOTICE_LIMIT)}\n")

    async def replies(self) -> AsyncIterator[Reply]:
        # Nothing ever arrives here: wait until closed, then end the iteration.
        await self._closed.wait()
        nothing: tuple[Reply, ...] = ()
        for reply in nothing:
            yield reply

    async def close(self) -> None:
        self._closed.set()

    def health(self) -> dict[str, Any]:
        return {"ok": True, "sent": self._sent}

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
