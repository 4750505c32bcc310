"""Running a blocking IMAP call in a worker thread, to its end even when it is given up.

imapclient blocks, so each call runs in a worker thread. When the awaiting coroutine is
cancelled (the core's timeout passed and the connector host cancels the call) the
thread does not stop with it: it would go on talking on the connection, a read beside
the next call on the shared connection (answers crossed), an approved write changing
the mailbox after the agent and the audit log were told it was stopped. So on
cancellation :func:`to_the_end` first *cuts* the connection the call uses (its socket is
shut down, and the call fails at its next read or write: nothing more is sent), then
waits for the thread to end before the cancellation goes on, with the connector's lock
still held, so the next call starts only once no thread uses that connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    import asyncio

__all__ = ["to_the_end"]

T = TypeVar("T")
_P = ParamSpec("_P")


async def to_the_end(
    cut: Callable[[], None], work: Callable[_P, T], /, *args: _P.args, **kwargs: _P.kwargs
) -> T:
    """``asyncio.to_thread(work, ...)``; when cancelled, ``cut()`` and wait for the thread."""
    import asyncio

    running = asyncio.ensure_future(asyncio.to_thread(work, *args, **kwargs))
    running.add_done_callback(_retrieved)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        cut()
        await asyncio.wait([running])  # a second cancel ends this wait, not the thread
        raise


def _retrieved(done: asyncio.Future[Any]) -> None:
    """A given-up call's error was for nobody; fetch it so asyncio does not log it."""
    if not done.cancelled():
        done.exception()
