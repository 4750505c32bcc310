"""Where the host's answers to one request wait for the task that sent it."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

__all__ = ["MAX_FRAMES_WAITING", "Deadlines", "Frame", "StreamNotRead", "Waiter"]

Frame = dict[str, Any] | None
"""An answer frame; None when the channel closed first."""


MAX_FRAMES_WAITING = 1024
"""A stream's frames the core keeps that its consumer has not taken (about a chunk a
token): more means the agent is not reading its answer, and the stream ends. They were
kept without end: 64 streams never read held ~450 MB, 8 long ones 55 MB each."""


class StreamNotRead(Exception):
    """A stream's consumer left more than MAX_FRAMES_WAITING frames waiting."""


class Waiter:
    """Where the answers to one request go: one future, or, for a stream, its frames in
    order (and a future its consumer waits on while none is here)."""

    __slots__ = ("_loop", "_timer", "_waiting_since", "deadline", "frames", "future", "unread")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, streamed: bool, deadline: float | None = None
    ) -> None:
        self._loop = loop
        self.frames: collections.deque[Frame] | None = collections.deque() if streamed else None
        self.future: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self.deadline = deadline
        """When a single answer is due (the loop's clock); its link expires it then."""
        self._waiting_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.unread = False
        """The stream's frames were left waiting past the limit (and dropped)."""

    def expire(self) -> None:
        """No answer in time: the one waiting for it gets ``TimeoutError``."""
        if not self.future.done():
            self.future.set_exception(TimeoutError())

    def put(self, message: dict[str, Any] | None) -> None:
        if self.frames is not None:
            if self.unread:
                return
            if len(self.frames) >= MAX_FRAMES_WAITING:
                self.unread = True
                self.frames.clear()  # the stream ends: what it held is not kept
            else:
                self.frames.append(message)
            if not self.future.done():
                self.future.set_result(None)
        elif not self.future.done():
            self.future.set_result(message)

    async def next_frame(self, within: float) -> Frame:
        """A stream's next frame: one already here at once, else the next to come within
        *within* seconds of waiting (``TimeoutError``)."""
        assert self.frames is not None
        if not self.frames and not self.unread:
            self._waiting_since = self._loop.time()
            self.future = self._loop.create_future()
            if self._timer is None:
                deadline = self._waiting_since + within
                self._timer = self._loop.call_at(deadline, self._check, within)
            await self.future
        if self.unread:
            raise StreamNotRead
        return self.frames.popleft()

    def _check(self, within: float) -> None:
        """The stream's one timer: moved on to the current wait's end when a wait began
        since it was set, instead of a timer set and cancelled for every frame (a stream
        of a few hundred chunks made thousands)."""
        self._timer = None
        if self.future.done():
            return  # not waiting now: the next wait sets it again
        deadline = self._waiting_since + within
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._check, within)
        else:
            self.future.set_exception(TimeoutError())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Deadlines:
    """One timer for the deadlines of every single answer in *waiting*, set for the
    earliest, instead of a timer set and cancelled for every request (a cost of the
    event loop's on each call)."""

    def __init__(self, waiting: dict[int, Waiter]) -> None:
        self._waiting = waiting
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0

    def watch(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        """Make sure the timer goes off by *due* (on *loop*: a timer left on a loop that
        ended, the link used again on another, never would)."""
        if self._timer is None or due < self._due or loop is not self._timer_loop:
            self.close()
            self._due = due
            self._timer = loop.call_at(due, self._expire, loop)
            self._timer_loop = loop

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Expire the answers now due, and set the timer for the earliest of the rest:
        under load, requests sent in the last moments, so one look at them a timeout."""
        self._timer = None
        now = loop.time()
        earliest: float | None = None
        for waiter in list(self._waiting.values()):
            due = waiter.deadline
            if due is None:
                continue
            if due <= now:
                waiter.expire()
            elif earliest is None or due < earliest:
                earliest = due
        if earliest is not None:
            self.watch(loop, earliest)

    def close(self) -> None:
        timer, loop = self._timer, self._timer_loop
        self._timer = self._timer_loop = None
        if timer is not None and loop is not None and not loop.is_closed():
            timer.cancel()
