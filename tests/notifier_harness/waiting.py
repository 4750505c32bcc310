"""Waiting in tests without sleeping blindly: until something is true, and a sleep to
inject into a notifier that records each wait instead of waiting it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from airlock.framework.notifiers import Notifier

N = TypeVar("N", bound=Notifier)


async def eventually(check: Any, within: float = 5.0) -> None:
    """Wait until *check()* (sync or async) is truthy: work happens on other tasks/threads."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not true after {within}s: {check}")
        await asyncio.sleep(0.01)


class Sleeps:
    """The injected sleep: records each wait, and yields briefly instead of waiting it."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)
        await asyncio.sleep(0.01)


def use_notifier(
    make: Callable[[Sleeps], N], body: Callable[[N, Sleeps], Awaitable[None]]
) -> Sleeps:
    """Make a notifier with a recording sleep, run *body* with it, close it; the waits."""
    sleeps = Sleeps()

    async def main() -> None:
        notifier = make(sleeps)
        try:
            await body(notifier, sleeps)
        finally:
            await notifier.close()

    asyncio.run(main())
    return sleeps
