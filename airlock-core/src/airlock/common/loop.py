"""The event loop the daemon and its connector host run on."""

from __future__ import annotations

import os
from collections.abc import Coroutine
from typing import Any


def run_loop(main: Coroutine[Any, Any, Any]) -> None:
    """Run *main* on uvloop where it is installed (``airlock-core[speedups]``): ~25%
    less CPU per request here (1,090-1,290 against 820-980 operations a second from 32
    clients); on asyncio's own loop otherwise."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        asyncio.run(main)
    else:
        uvloop.run(main)


def give_way() -> None:
    """Give up the rest of this process's turn on its CPU, once a chunk of a stream has
    been written towards the process waiting for it.

    The kernel tends to queue a woken reader on its waker's CPU, and the writer goes on
    with the rest of the stream (the chunks that came with the first), so the reader
    waited for it: 0.2 ms of the first token each, in the connector host and in the
    daemon (alternated A/B, 1,000 rounds; ``benchmarks/openrouter.py`` has the figures).
    The daemon gives way once a stream, after its first chunk; the connector host after
    every chunk (a first chunk often comes in a burst the host parses while the agent
    reads). On a loaded machine the daemon's other calls may wait up to a scheduler
    slice for it.
    """
    os.sched_yield()
