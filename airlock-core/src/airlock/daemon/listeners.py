"""Each notifier's replies, handed to the daemon one at a time until its listener stops.

A reload (or an unlock) replaces the notifiers. The old notifier's listener stops
receiving at once, but a reply it is handling is handled to the end: cut off halfway, it
was either lost or, received again by the new notifier, handled twice (a wrong code
counted twice toward the lockout). The new notifier takes over from the old one
(``Notifier.carry_over``: where its updates go on from, the prompts it sent) once that
reply is done, and only then receives.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from airlock.common.logs import get_logger
from airlock.framework.notifiers import Notifier
from airlock.security.replies import ReplyHandler

__all__ = ["HANDOVER_WAIT", "Listener", "listen_to"]

log = get_logger("airlock.daemon")

HANDOVER_WAIT = 60.0
"""Seconds a new listener waits for the old one's reply in hand before cutting it off (a
reply's handling is bounded well within this: a look-up by the host's timeout, each
channel's send by its own)."""


class Listener:
    """Hands every reply *notifier* receives to *replies*, until :meth:`stop`; with
    *after*, first waits for that listener (the same channel before a reload) to stop
    and takes over from its notifier."""

    def __init__(
        self,
        name: str,
        notifier: Notifier,
        replies: ReplyHandler,
        *,
        after: Listener | None = None,
        wait: float = HANDOVER_WAIT,
    ) -> None:
        self.name = name
        self.notifier = notifier
        self._replies = replies
        self._busy = after is not None
        """Taking over or handling a reply: a stop then waits for the end of it."""
        self._stopping = False
        self.receiving = False
        """Whether its notifier's replies have started (after any take-over)."""
        self.released = asyncio.Event()
        """Set once no listener will take over from this one's notifier any more (its
        successor took over, gave up, or there is none): only then may it be closed."""
        self.task = asyncio.create_task(self._run(after, wait), name=f"listen-{name}")
        if after is not None:
            self.task.add_done_callback(lambda _: after.released.set())

    def stop(self) -> None:
        """Stop receiving: at once, or after the reply being handled."""
        self._stopping = True
        if not self._busy:
            self.task.cancel()

    async def _run(self, after: Listener | None, wait: float) -> None:
        if after is not None:
            await self._take_over(after, wait)
            self._busy = False
            if self._stopping:
                return
        received = None
        try:
            received = self.notifier.replies()
            self.receiving = True
            async for reply in received:
                self._busy = True
                try:
                    await self._replies.handle(self.name, reply)
                except Exception as exc:  # one failed answer must not stop the listening
                    log.error("notifier_reply_failed", notifier=self.name, error=type(exc).__name__)
                finally:
                    self._busy = False
                if self._stopping:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("notifier_listen_failed", notifier=self.name, error=type(exc).__name__)
        finally:
            close = getattr(received, "aclose", None) if received is not None else None
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def _take_over(self, old: Listener, wait: float) -> None:
        """*old* stopped (its reply in hand handled, for *wait* seconds at most), then
        what its notifier knew carried over to this one."""
        try:
            _, running = await asyncio.wait({old.task}, timeout=wait)
            if running:
                log.warning("notifier_reply_cut_off", notifier=self.name, waited=wait)
                old.task.cancel()
                await asyncio.wait({old.task}, timeout=wait)
            try:
                self.notifier.carry_over(old.notifier)
            except Exception as exc:  # a plugin's failure costs its history, not the channel
                log.warning(
                    "notifier_carry_over_failed", notifier=self.name, error=type(exc).__name__
                )
        finally:
            old.released.set()


def listen_to(
    notifiers: Mapping[str, Notifier],
    replies: ReplyHandler,
    *,
    before: Mapping[str, Listener] | None = None,
) -> dict[str, Listener]:
    """A listener for each of *notifiers*; *before*'s (the channels before a reload) are
    stopped, and each new one takes over from the old of its name."""
    old = before or {}
    listeners = {
        name: Listener(name, notifier, replies, after=old.get(name))
        for name, notifier in notifiers.items()
    }
    for name, listener in old.items():
        listener.stop()
        if name not in listeners:
            listener.released.set()  # nobody takes over from it
    return listeners
