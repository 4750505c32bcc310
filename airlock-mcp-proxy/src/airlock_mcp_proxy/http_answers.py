"""A server's answers over HTTP (``url``), bounded as its stdout is (:mod:`.stdio`).

The MCP library reads a JSON answer whole, however long, then parses it (it bounds only
an SSE event, at 1 MiB): a server's 100 MB answer was 100 MB and more in the connector
host. Here an answer is read up to :data:`~.stdio.MAX_LINE` (16 MiB), its JSON values
counted and its content blocks too (:mod:`.messages`) before the library sees it (an
error answer's body as well: the library reads that too); one over a limit,
or compressed (its size unknown until unpacked), reaches the library as the server's
JSON-RPC error saying so, and the call fails with it (the session goes on). SSE streams
pass as they are.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

from airlock_mcp_proxy.messages import (
    COUNTED_FROM,
    TooManyObjects,
    blocks_refusal,
    count_objects,
)

__all__ = ["BoundedAnswers", "bounded_client"]

TIMEOUT = httpx2.Timeout(30.0, read=300.0)
"""As the MCP library's own client: a server may hold an event stream open."""


class BoundedAnswers(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        headers = response.headers
        if headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
            await response.aclose()
            return _refused("the server's answer came compressed")
        if headers.get("Content-Type", "").lower().startswith("text/event-stream"):
            return response  # the library bounds each event
        body = bytearray()
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                body += chunk
                if len(body) > self._limit:
                    return _refused(f"the server's answer is over {self._limit >> 20} MiB")
        finally:
            await response.aclose()
        if len(body) >= COUNTED_FROM:
            try:
                count_objects(bytes(body))
            except TooManyObjects as exc:
                return _refused(f"the server answered with {exc}")
            why = _blocks(bytes(body))
            if why is not None:
                return _refused(why)
        return httpx2.Response(
            response.status_code,
            headers=headers,
            content=bytes(body),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def bounded_client(limit: int) -> httpx2.AsyncClient:
    """An HTTP client for the MCP library whose answers are bounded at *limit* bytes."""
    return httpx2.AsyncClient(
        transport=BoundedAnswers(httpx2.AsyncHTTPTransport(), limit),
        timeout=TIMEOUT,
        headers={"Accept-Encoding": "identity"},
        trust_env=False,
    )


def _blocks(body: bytes) -> str | None:
    """A result's content blocks over the limit (a model each, in the library)."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None  # the library says what is wrong with it
    return blocks_refusal(message.get("result")) if isinstance(message, dict) else None


def _refused(why: str) -> httpx2.Response:
    """The server's JSON-RPC error as the library reads it for a request (the id is the
    request's: the library puts it back)."""
    error: dict[str, Any] = {"code": -32603, "message": why}
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    return httpx2.Response(502, headers={"Content-Type": "application/json"}, content=body)
