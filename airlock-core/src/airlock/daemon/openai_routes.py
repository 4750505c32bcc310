"""The OpenAI-compatible endpoint: ``/v1/openai/{service}/...`` for OpenAI clients.

A connector that declares ``openai_operations`` (see docs/plugins.md) has those operations
served here in OpenAI's own request and response format, so the official ``openai`` SDK
and OpenAI-compatible tools work through Airlock unchanged: the session token is the API
key, and every call goes through the gateway like ``POST /v1/ops`` (session, policies,
scope, rate limit, budget, audit). ``stream: true`` relays the service's server-sent
events as each chunk arrives; a stream that fails or is cut by the budget ends with an
``error`` event instead of ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

from airlock import api_openai as api
from airlock.common.json_text import compact_encoder
from airlock.common.logs import get_logger
from airlock.common.loop import give_way
from airlock.daemon.http import BODY_TIMEOUT, Handler, parse_json_object, peer, whole_body
from airlock.daemon.openapi import Route
from airlock.daemon.routes import RUNTIME, bearer
from airlock.daemon.runtime import Runtime
from airlock.errors import AirlockError, BudgetExhausted, InvalidInput, NotFound
from airlock.framework.connectors import OPENAI_PATHS
from airlock.gateway.priced_calls import BudgetCut

__all__ = ["OPENAI_ROUTES", "openai_call"]

log = get_logger("airlock.daemon")

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def _operation(runtime: Runtime, service: str, path: str, method: str) -> str:
    """The operation that serves OpenAI's *path* on *service*, or a 404 saying why."""
    svc = runtime.services.get(service)
    if svc is None:
        raise NotFound(f"no service named {service[:40]!r}")
    operation = svc.connector.openai_operations.get(path)
    if operation is None or OPENAI_PATHS.get(path) != method:
        spoken = ", ".join(f"/{p}" for p in svc.connector.openai_operations) or "none"
        raise NotFound(
            f"service {service!r} has no OpenAI endpoint {method} /{path[:60]}",
            hint=f"it serves: {spoken}",
        )
    return operation


async def openai_call(request: web.Request, path: str) -> web.StreamResponse:
    """Serve OpenAI's *path* (a key of ``OPENAI_PATHS``) on the service the URL names."""
    runtime = request.app[RUNTIME]
    service = request.match_info["service"]
    operation = _operation(runtime, service, path, request.method)
    token = bearer(request)
    caller = peer(request)
    body: dict[str, Any] = {}
    if request.method == "POST":
        body = parse_json_object(await whole_body(request))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):  # "true" or 1 would be taken for a call not streamed
        raise InvalidInput("stream: true or false", field="params.stream")
    gateway = runtime.gateway
    if stream:
        chunks = await gateway.stream(token, caller, service, operation, body)
        return await _relay(request, chunks)
    result = await gateway.run(token, caller, service, operation, body)
    return web.Response(text=result.model_dump_json(by_alias=True), content_type="application/json")


async def _relay(
    request: web.Request, chunks: AsyncGenerator[dict[str, Any], None]
) -> web.StreamResponse:
    """Server-sent events, one per chunk, written the moment the chunk arrives.

    The first chunk is awaited before the answer starts, so a refusal (the budget, the
    service) is still an ordinary JSON error with its status, not an event."""
    try:
        try:
            first: dict[str, Any] | None = await anext(chunks)
        except StopAsyncIteration:
            first = None
        response = _EventStream(headers=SSE_HEADERS)
        await response.prepare(request)
        # An event not taken by the agent within the idle timeout ends the stream: one
        # that stopped reading held its call (the budget reserved, the service's chunks
        # gathering in the daemon) for as long as it kept the connection open.
        wait = float(request.app.get(BODY_TIMEOUT, 30.0))
        # From here on the status is sent: every ending is an event, never an exception
        # (which would make the error wrapper, ``http.guarded``, write a second response into the
        # stream).
        try:
            if first is not None:
                await _send(response, _event(first), wait)
                give_way()  # the agent reads its first chunk before the rest are relayed
                async for chunk in chunks:
                    await _send(response, _event(chunk), wait)
            ending = b"data: [DONE]\n\n"
        except ConnectionError:
            return response  # the client went away: nothing more to send
        except TimeoutError:
            if request.transport is not None:
                request.transport.abort()  # it does not read: nothing more is sent
            return response
        except BudgetCut as exc:
            ending = _event({"error": _error(BudgetExhausted.code, str(exc))})
        except AirlockError as exc:
            ending = _event({"error": exc.to_dict()})
        except Exception as exc:
            log.error("stream_failed", path=request.path, error=type(exc).__name__)
            ending = _event({"error": _error("internal_error", "stream failed")})
        with contextlib.suppress(ConnectionError, TimeoutError):
            await _send(response, ending, wait)
            async with asyncio.timeout(wait):
                await response.write_eof()
    finally:
        await chunks.aclose()  # settles the budget and writes the audit record
    return response


async def _send(response: web.StreamResponse, data: bytes, wait: float) -> None:
    """Write *data*; ``TimeoutError`` when the agent has not taken it within *wait*."""
    async with asyncio.timeout(wait):
        await response.write(data)


class _EventStream(web.StreamResponse):
    """An answer of server-sent events whose status and headers go out with its first
    event, in one write: the agent's client wakes once for both (aiohttp's own ``Response``
    buffers its headers the same way; a stream sends them at ``prepare`` by default)."""

    _send_headers_immediately = False


_EVENT_JSON = compact_encoder()
"""An event's JSON (a chunk the host parsed, or an error): a tree, encoded each chunk."""


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + _EVENT_JSON(data).encode() + b"\n\n"


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _serving(path: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await openai_call(request, path)

    return handler


def _route(path: str, summary: str, **described: Any) -> Route:
    return Route(
        OPENAI_PATHS[path],
        f"/v1/openai/{{service}}/{path}",
        _serving(path),
        summary,
        headers=("Authorization",),
        **described,
    )


OPENAI_ROUTES: tuple[Route, ...] = (
    _route(
        "chat/completions",
        "OpenAI-compatible chat completion in a spend session (stream: true for events)",
        body=api.OpenAIChatRequest,
        response=api.OpenAIChatCompletion,
        events=api.OpenAIChatChunk,
    ),
    _route(
        "embeddings",
        "OpenAI-compatible embeddings in a spend session",
        body=api.OpenAIEmbeddingsRequest,
        response=api.OpenAIEmbeddings,
    ),
    _route(
        "models",
        "OpenAI-compatible list of the models the service allows",
        response=api.OpenAIModelList,
    ),
)
"""The OpenAI API paths a connector may serve (``OPENAI_PATHS``), as routes: served and
described like every other route."""
