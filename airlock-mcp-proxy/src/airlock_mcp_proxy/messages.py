"""A server's line read as an MCP message, at a bounded cost.

A line of 16 MiB (the most read) can hold over half a million JSON objects. Parsed
whole, 540,000 empty content blocks cost the connector host ~860 MB and then, as the
call's result (a pydantic model each), ~2 GB and 15 s, stalling every service it runs.
So a long line is first counted (Python's JSON parser, stopped at
:data:`MAX_OBJECTS`): a server that writes more in one message is broken or hostile, and
the session ends as for an over-long line. A result of more than :data:`MAX_BLOCKS`
content blocks is answered for the server with an error (the call fails, saying so;
the session goes on).
"""

from __future__ import annotations

import json
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
    "TooManyObjects",
    "count_objects",
    "read_message",
]

MAX_OBJECTS = 100_000
"""JSON objects one message may hold: a tool list of 500 tools with large schemas has a
few tens of thousands; a result of rows as objects, up to this many."""
MAX_BLOCKS = 10_000
"""Content blocks one result may hold (each becomes a model of its own)."""
COUNTED_FROM = 256 * 1024
"""Lines at least this long are counted before they are parsed (a shorter one cannot
hold enough objects to matter)."""


class TooManyObjects(ValueError):
    """A message of over :data:`MAX_OBJECTS` JSON objects."""


def read_message(line: bytes) -> JSONRPCMessage:
    """*line* as an MCP message; ``ValueError`` if it is not one, :class:`TooManyObjects`
    if it holds too much to parse."""
    if len(line) >= COUNTED_FROM:
        count_objects(line)
    message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    if isinstance(message, JSONRPCResponse):
        content = message.result.get("content")
        if isinstance(content, list) and len(content) > MAX_BLOCKS:
            error = ErrorData(
                code=INTERNAL_ERROR,
                message=f"the server answered with {len(content):,} content blocks, "
                f"over Airlock's {MAX_BLOCKS:,}",
            )
            return JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
    return message


def count_objects(line: bytes) -> None:
    """:class:`TooManyObjects` if *line*, read as JSON, holds more than MAX_OBJECTS
    objects (read only that far); nothing said of text that is not JSON."""
    seen = 0

    def counted(obj: dict[str, Any]) -> dict[str, Any]:
        nonlocal seen
        seen += 1
        if seen > MAX_OBJECTS:
            raise TooManyObjects(f"a message of over {MAX_OBJECTS:,} JSON objects")
        return obj

    try:
        json.loads(line, object_hook=counted)
    except TooManyObjects:
        raise
    except (ValueError, RecursionError):
        pass  # not JSON the counter can read: the MCP parser says what it is
