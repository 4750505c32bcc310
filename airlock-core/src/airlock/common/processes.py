"""Ending a child process: waited for by the event loop that started it, or ended by
the kernel with it."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the audit writer process imports this module, and no event loop
    import asyncio

__all__ = ["end_with_parent", "wait_or_kill"]

PR_SET_PDEATHSIG = 1


async def wait_or_kill(process: asyncio.subprocess.Process, within: float) -> None:
    """Wait for *process* to end; kill it if it has not within *within* seconds."""
    import asyncio

    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def end_with_parent() -> bool:
    """Have the kernel SIGKILL this process when the thread that started it ends, however
    that ends (``PR_SET_PDEATHSIG``): a child in a session of its own is out of reach of a
    kill of its parent's process group. False where the kernel cannot (not Linux); a
    parent already gone by the time it was asked ends this process at once."""
    from airlock.ptrace import prctl

    parent = os.getppid()
    if not prctl(PR_SET_PDEATHSIG, signal.SIGKILL):
        return False
    if os.getppid() != parent:  # it ended before the kernel was asked
        os.kill(os.getpid(), signal.SIGKILL)
    return True
