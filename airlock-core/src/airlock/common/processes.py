"""Ending a child process the event loop started."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["wait_or_kill"]


async def wait_or_kill(process: asyncio.subprocess.Process, within: float) -> None:
    """Wait for *process* to end; kill it if it has not within *within* seconds."""
    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
