"""A server's line read as an MCP message, at a bounded cost.

A line of 16 MiB (the most read) can hold over half a million JSON objects. Parsed
whole, 540,000 empty content blocks cost the connector host ~860 MB and then, as the
call's result (a pydantic model each), ~2 GB and 15 s, stalling every service it runs.
So a long line is first counted, in its bytes between its texts (nothing is parsed;
at most ~0.5 s for a hostile 16 MiB): a server that writes more than
:data:`MAX_OBJECTS` objects or :data:`MAX_VALUES` values of any kind in one message is
broken or hostile, and the session ends as for an over-long line. A result of more
than :data:`MAX_BLOCKS` content blocks is answered for the server with an error (the
call fails, saying so; the session goes on).
"""

from __future__ import annotations

import re
from typing import Any

from mcp.types import (
    INTERNAL_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)

__all__ = [
    "COUNTED_FROM",
    "MAX_BLOCKS",
    "MAX_OBJECTS",
    "MAX_VALUES",
    "TooManyObjects",
    "blocks_refusal",
    "count_objects",
    "read_message",
]

MAX_OBJECTS = 100_000
"""JSON objects one message may hold: a tool list of 500 tools with large schemas has a
few tens of thousands; a result of rows as objects, up to this many."""
MAX_VALUES = 500_000
"""JSON values of any kind (objects, arrays, numbers, texts) one message may hold: 16 MiB
of empty arrays (5.6 million) cost the host 1.8 GB and 6 s to parse, of numbers 0.7 GB."""
MAX_BLOCKS = 10_000
"""Content blocks one result may hold (each becomes a model of its own)."""
COUNTED_FROM = 256 * 1024
"""Lines at least this long are counted before they are parsed (a shorter one cannot
hold enough values to matter)."""
_TEXTS = re.compile(rb'"(?:[^"\\]++|\\.)*+"')


class TooManyObjects(ValueError):
    """A message of over :data:`MAX_OBJECTS` JSON objects or :data:`MAX_VALUES` values."""


def read_message(line: bytes) -> JSONRPCMessage:
    """*line* as an MCP message; ``ValueError`` if it is not one, :class:`TooManyObjects`
    if it holds too much to parse."""
    if len(line) >= COUNTED_FROM:
        count_objects(line)
    message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    if isinstance(message, JSONRPCResponse):
        why = blocks_refusal(message.result)
        if why is not None:
            error = ErrorData(code=INTERNAL_ERROR, message=why)
            return JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
    return message


def blocks_refusal(result: Any) -> str | None:
    """Why a result of over :data:`MAX_BLOCKS` content blocks is refused; None if not."""
    content = result.get("content") if isinstance(result, dict) else None
    if isinstance(content, list) and len(content) > MAX_BLOCKS:
        return (
            f"the server answered with {len(content):,} content blocks, "
            f"over Airlock's {MAX_BLOCKS:,}"
        )
    return None


def count_objects(line: bytes) -> None:
    """:class:`TooManyObjects` if *line*, read as JSON, holds more than MAX_OBJECTS
    objects or MAX_VALUES values: counted in its bytes between its texts, nothing parsed,
    stopping as soon as a limit is passed (text that is not JSON is counted too)."""
    if _over(line.count(b"{"), _values(line, 0, len(line))) is None:
        return  # even counting inside the texts, under both
    objects = values = start = 0
    for text in _TEXTS.finditer(line):
        objects += line.count(b"{", start, text.start())
        values += _values(line, start, text.start())
        start = text.end()
        if (why := _over(objects, values)) is not None:
            raise TooManyObjects(why)
    why = _over(objects + line.count(b"{", start), values + _values(line, start, len(line)))
    if why is not None:
        raise TooManyObjects(why)


def _values(line: bytes, start: int, end: int) -> int:
    return sum(line.count(mark, start, end) for mark in (b"{", b"[", b","))


def _over(objects: int, values: int) -> str | None:
    if objects > MAX_OBJECTS:
        return f"a message of over {MAX_OBJECTS:,} JSON objects"
    if values > MAX_VALUES:
        return f"a message of over {MAX_VALUES:,} JSON values"
    return None
