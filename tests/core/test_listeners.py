"""How a reload hands each channel from its old notifier to its new one
(``airlock.daemon.listeners``): the reply in hand is finished, the new notifier takes over
from the old and only then receives. The messengers' own runs of this are in
tests/notifier_harness/scenarios.py (a reply in hand when the daemon reloads)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import cast

from structlog.testing import capture_logs

from airlock.daemon.listeners import Listener, listen_to
from airlock.daemon.reload import retire
from airlock.framework.notifiers import Notifier, Reply
from airlock.models import NoCredentials, NoSettings
from airlock.security.approvals import ApprovalService
from airlock.security.replies import ReplyHandler


class Inbox(Notifier):
    """A notifier whose replies come from a queue; a new one takes over the old's queue
    and remembers whom it took over from, and whether that one was still open."""

    name = "inbox"

    def __init__(self) -> None:
        super().__init__(NoSettings(), NoCredentials())
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.took_over: Inbox | None = None
        self.open_at_take_over: bool | None = None
        self.receiving = False
        self.closed = False

    def carry_over(self, old: Notifier) -> None:
        assert isinstance(old, Inbox)
        self.took_over, self.queue = old, old.queue
        self.open_at_take_over = not old.closed

    async def close(self) -> None:
        self.closed = True

    async def replies(self) -> AsyncIterator[Reply]:
        self.receiving = True
        while True:
            text = await self.queue.get()
            yield Reply(sender="person", text=text, received_at=datetime.now(UTC))


class Handler:
    """Records each reply with the notifier's name; holds while ``gate`` is clear."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()

    async def handle(self, notifier: str, reply: Reply) -> None:
        self.started.set()
        await self.gate.wait()
        self.handled.append((notifier, reply.text))


def handler() -> tuple[Handler, ReplyHandler]:
    h = Handler()
    return h, cast(ReplyHandler, h)


async def in_hand(seen: Handler, notifier: Inbox, text: str) -> None:
    """*notifier* receives *text*, whose handling is held (``seen.gate``) once begun."""
    seen.gate.clear()
    notifier.queue.put_nowait(text)
    await seen.started.wait()


class NoApprovals:
    """The old approval service a reload retires, with nothing in flight."""

    async def finish(self, grace: float) -> None:
        return None


async def until(condition: Callable[[], bool]) -> None:
    """*condition* true within a few hundred turns of the loop (no clock involved)."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never came true")


async def ended(listener: Listener) -> None:
    done, _ = await asyncio.wait({listener.task}, timeout=2)
    assert done, "the listener ended"


def test_a_stop_while_waiting_for_replies_ends_the_listener_at_once() -> None:
    async def main() -> None:
        seen, replies = handler()
        notifier = Inbox()
        listener = Listener("inbox", notifier, replies)
        await until(lambda: notifier.receiving)
        listener.stop()
        await ended(listener)
        notifier.queue.put_nowait("late")
        await asyncio.sleep(0)
        assert seen.handled == []

    asyncio.run(main())


def test_the_reply_in_hand_is_finished_before_the_new_notifier_receives() -> None:
    async def main() -> None:
        seen, replies = handler()
        old_notifier, new_notifier = Inbox(), Inbox()
        old = listen_to({"inbox": old_notifier}, replies)
        await in_hand(seen, old_notifier, "000000")
        new = listen_to({"inbox": new_notifier}, replies, before=old)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not new_notifier.receiving, "the new one waits for the reply in hand"
        assert not old["inbox"].task.done()
        seen.gate.set()
        await ended(old["inbox"])
        await until(lambda: new_notifier.receiving)
        assert new_notifier.took_over is old_notifier
        new_notifier.queue.put_nowait("next")
        await until(lambda: len(seen.handled) == 2)
        assert seen.handled == [("inbox", "000000"), ("inbox", "next")]
        new["inbox"].stop()

    asyncio.run(main())


def test_two_reloads_in_a_row_hand_over_in_order() -> None:
    """The second reload comes while the first's new listener still waits: it takes over
    too, then hands on, so the newest notifier has what the first knew."""

    async def main() -> None:
        seen, replies = handler()
        first, second, third = Inbox(), Inbox(), Inbox()
        one = listen_to({"inbox": first}, replies)
        await in_hand(seen, first, "in hand")
        two = listen_to({"inbox": second}, replies, before=one)
        three = listen_to({"inbox": third}, replies, before=two)
        seen.gate.set()
        await until(lambda: third.receiving)
        assert (third.took_over, second.took_over) == (second, first)
        assert not second.receiving, "the middle one stopped without receiving"
        third.queue.put_nowait("after")
        await until(lambda: len(seen.handled) == 2)
        assert [text for _, text in seen.handled] == ["in hand", "after"]
        three["inbox"].stop()

    asyncio.run(main())


def test_a_reply_in_hand_past_the_wait_is_cut_off_and_the_new_one_receives() -> None:
    async def main() -> None:
        seen, replies = handler()
        old_notifier, new_notifier = Inbox(), Inbox()
        old = Listener("inbox", old_notifier, replies)
        await in_hand(seen, old_notifier, "stuck")
        new = Listener("inbox", new_notifier, replies, after=old, wait=0.05)
        old.stop()
        await ended(old)  # cut off by the new one's wait running out
        assert seen.handled == []
        await until(lambda: new_notifier.receiving)
        assert new_notifier.took_over is old_notifier
        new.stop()

    asyncio.run(main())


def test_a_notifier_that_cannot_receive_is_logged_and_its_successor_still_takes_over() -> None:
    """A send-only notifier (``replies`` not written: the base raises at once) says so
    in the log, as before; the notifier replacing it still takes over and receives."""

    class SendOnly(Inbox):
        def replies(self) -> AsyncIterator[Reply]:
            raise NotImplementedError

    async def main() -> list[str]:
        _, replies = handler()
        old_notifier, new_notifier = SendOnly(), Inbox()
        with capture_logs() as logged:
            old = listen_to({"inbox": old_notifier}, replies)
            await ended(old["inbox"])
            new = listen_to({"inbox": new_notifier}, replies, before=old)
            await until(lambda: new_notifier.receiving)
        assert old["inbox"].released.is_set()
        new["inbox"].stop()
        return [entry["event"] for entry in logged]

    assert asyncio.run(main()) == ["notifier_listen_failed"]


def test_a_retired_notifier_is_closed_only_after_its_successor_took_over() -> None:
    """Its reply in hand cut off, the old listener ends before the new one took over:
    closing the old notifier then (the reload's retiring of it) lost what the new one
    takes over (signal-cli's connection, with the messages waiting on it)."""

    async def main() -> None:
        seen, replies = handler()
        old_notifier, new_notifier = Inbox(), Inbox()
        old = {"inbox": Listener("inbox", old_notifier, replies)}
        await in_hand(seen, old_notifier, "stuck")
        new = Listener("inbox", new_notifier, replies, after=old["inbox"], wait=0.05)
        old["inbox"].stop()
        approvals = cast(ApprovalService, NoApprovals())
        await retire(old, approvals, {"inbox": old_notifier}, grace=5)
        assert old_notifier.closed
        assert new_notifier.open_at_take_over is True
        new.stop()

    asyncio.run(main())


def test_a_daemon_stopping_during_a_handover_still_closes_the_old_notifier() -> None:
    """The daemon's stop cancels the retiring of a reload's old parts: their notifier
    was then never closed (its API clients left open)."""

    async def main() -> None:
        seen, replies = handler()
        old_notifier = Inbox()
        old = {"inbox": Listener("inbox", old_notifier, replies)}
        await in_hand(seen, old_notifier, "in hand")
        old["inbox"].stop()  # its reply in hand: it goes on
        approvals = cast(ApprovalService, NoApprovals())
        retiring = asyncio.ensure_future(retire(old, approvals, {"inbox": old_notifier}, grace=60))
        await asyncio.sleep(0)
        retiring.cancel()  # the daemon stops
        await asyncio.gather(retiring, return_exceptions=True)
        assert old_notifier.closed
        old["inbox"].task.cancel()

    asyncio.run(main())
