"""Waiting between attempts to reach a remote service, and saying so in ``airlock status``.

A notifier's receive loop runs for the daemon's whole life, so a messenger that is down,
rate-limiting or refusing must neither end the loop nor hammer the service: after each
failure the loop waits longer (doubling up to a cap), honours any wait the service asked
for, starts over after a success, and stops waiting at once when the notifier closes.
What it is waiting for is the channel's health, e.g.
``{"ok": False, "detail": "unreachable: ConnectError (retrying in 8s)"}``.

The sleep is injected, so tests check the delays without waiting them.
:class:`ApiSettings` is the part of a notifier's settings that goes with it: where the
service's API is, and how long to back off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ApiSettings", "Backoff", "Sleep"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class Backoff:
    def __init__(
        self, *, initial: float = 1.0, maximum: float = 60.0, sleep: Sleep | None = None
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self._sleep: Sleep = sleep or asyncio.sleep
        self._next = initial
        self._closed = asyncio.Event()
        self.ok = True
        self.detail = ""

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def health(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}

    def succeeded(self) -> None:
        """The service answered: the next failure waits the initial delay again."""
        self._next = self.initial
        self.ok, self.detail = True, ""

    async def failed(self, problem: str, *, at_least: float = 0.0) -> None:
        """Record *problem* and wait before the next attempt (returns early on close).

        *at_least* is a wait the service asked for (Telegram's ``retry_after``); it is
        honoured even beyond the cap.
        """
        delay = max(self._next, at_least)
        self._next = min(self._next * 2, self.maximum)
        self.ok, self.detail = False, f"{problem} (retrying in {_seconds(delay)})"
        await self.until_closed(self._sleep(delay))

    async def until_closed(self, work: Awaitable[T]) -> T | None:
        """*work*'s result, or None if :meth:`close` comes first (then *work* is cancelled)."""
        if self.closed:
            if asyncio.iscoroutine(work):
                work.close()
            return None
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled() or not task.done():
            return None
        return task.result()

    def close(self) -> None:
        self._closed.set()


class ApiSettings(BaseModel):
    """Settings shared by notifiers that talk to an HTTP API; subclasses add their own
    (and redeclare ``api_base`` with its default)."""

    model_config = ConfigDict(extra="forbid")

    api_base: str = Field(description="Where the service's API is (http:// or https://).")
    retry_initial: float = Field(1.0, gt=0, le=60, description="First wait after an error.")
    retry_max: float = Field(60.0, gt=0, le=3600, description="Longest wait after errors.")

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def backoff(self, sleep: Sleep | None = None) -> Backoff:
        return Backoff(initial=self.retry_initial, maximum=self.retry_max, sleep=sleep)


def _seconds(delay: float) -> str:
    return f"{delay:.0f}s" if delay >= 1 else f"{delay:.1f}s"
