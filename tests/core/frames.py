"""One ``FrameReader`` for each stream a test reads the connector host's frames from
(a reader holds what it took from the stream beyond the frame it returned)."""

from __future__ import annotations

import asyncio
import weakref

from airlock.connector_host.protocol import FrameReader

_READERS: weakref.WeakKeyDictionary[asyncio.StreamReader, FrameReader] = weakref.WeakKeyDictionary()


def frames_of(reader: asyncio.StreamReader, limit: int) -> FrameReader:
    found = _READERS.get(reader)
    if found is None:
        found = _READERS[reader] = FrameReader(reader, limit)
    return found
