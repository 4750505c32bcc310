"""OpenRouter's HTTP API over httpx: JSON calls, server-sent events, errors mapped.

The API key travels only in the ``Authorization`` header of requests to ``api_base``;
no message raised here quotes a header, a request body or the service's error text for an
authentication failure (a service may echo part of the key back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from airlock.plugin import (
    ConnectorAuthError,
    ConnectorError,
    InvalidInput,
    ServiceOutOfCredit,
    ServiceRateLimited,
)
from airlock_openrouter._transport import AiohttpTransport

__all__ = ["OpenRouterApi"]

ERROR_TEXT_LIMIT = 300
MAX_ANSWER_BYTES = 16 << 20
"""The most of a JSON answer read (the model list is well under a megabyte)."""
MAX_ERROR_BYTES = 64 << 10
"""The most of an error answer read: only the start of its message is ever shown."""
MAX_EVENT_BYTES = 1 << 20
"""The most one server-sent event (or one line of it) may hold."""
TAIL_BYTES, TAIL_SECONDS = 64 << 10, 2.0
"""What is read after ``[DONE]`` so the connection can serve again; past either, it is
closed instead (a service must not keep a finished call open by dripping bytes)."""


class OpenRouterApi:
    def __init__(
        self,
        api_base: str,
        api_key: str,
        *,
        service: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service = service
        self._client = httpx.AsyncClient(
            base_url=api_base.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {api_key}",
                "X-Title": "Airlock",
                "User-Agent": "airlock-openrouter",
            },
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
            # Under a proxy the environment names, httpx's own transport (see _transport).
            mounts=None if transport or _env_proxied() else {"all://": AiohttpTransport()},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, path: str) -> dict[str, Any]:
        return await self._json("GET", path, None)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", path, body)

    async def _json(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            async with self._client.stream(method, path, json=body) as response:
                if response.status_code >= 400:
                    content = await _read(response, MAX_ERROR_BYTES, cut=True)
                    raise self._error(response.status_code, response.headers, content)
                return self._object(await _read(response, MAX_ANSWER_BYTES))
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST *body* and yield each server-sent event's JSON as it arrives."""
        try:
            async with self._client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    content = await _read(response, MAX_ERROR_BYTES, cut=True)
                    raise self._error(response.status_code, response.headers, content)
                async for payload in _events(response):
                    yield self._object(payload)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def _object(self, content: bytes) -> dict[str, Any]:
        try:
            data = json.loads(content)
        except ValueError:
            raise ConnectorError("OpenRouter sent something that is not JSON") from None
        if not isinstance(data, dict):
            raise ConnectorError("OpenRouter sent JSON that is not an object")
        return data

    def _unreachable(self, exc: httpx.HTTPError) -> ConnectorError:
        if isinstance(exc, httpx.TimeoutException):
            return ConnectorError(f"OpenRouter did not answer in time ({type(exc).__name__})")
        return ConnectorError(f"OpenRouter unreachable: {type(exc).__name__}")

    def _error(self, status: int, headers: httpx.Headers, content: bytes) -> Exception:
        text = _error_text(content)
        if status in (401, 403):
            # The person fixes this, not the agent: no detail that could echo the key.
            return ConnectorAuthError(
                f"OpenRouter refused the API key stored for service {self.service!r} "
                f"(HTTP {status}); the person has been told",
            )
        if status == 402:
            return ServiceOutOfCredit(
                "the OpenRouter account has no credit left for this call",
                hint="the person can add credit at https://openrouter.ai/settings/credits",
            )
        if status == 429:
            retry_after = _retry_after(headers)
            wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            return ServiceRateLimited(
                f"OpenRouter is rate limiting this key{wait}", retry_after=retry_after
            )
        if status >= 500:
            return ConnectorError(f"OpenRouter failed: HTTP {status}")
        return InvalidInput(f"OpenRouter refused the request (HTTP {status}): {text}")


def _env_proxied() -> bool:
    """Whether the environment names a proxy httpx would use (``HTTP_PROXY``,
    ``HTTPS_PROXY``, ``ALL_PROXY``). Then every request goes through httpx's own transport:
    a mount for ``all://`` would take the place of ``ALL_PROXY``'s and go round it."""
    from urllib.request import getproxies  # httpx imports it already

    found = getproxies()
    return any(found.get(scheme) for scheme in ("http", "https", "all"))


async def _read(response: httpx.Response, limit: int, *, cut: bool = False) -> bytes:
    """The answer's body (decoded), at most *limit* bytes: more is refused, or with *cut*
    left unread."""
    body = bytearray()
    async for data in response.aiter_bytes():
        body += data
        if len(body) > limit:
            if cut:
                return bytes(body[:limit])
            raise ConnectorError(f"OpenRouter's answer is over {limit >> 20} MiB")
    return bytes(body)


async def _events(response: httpx.Response) -> AsyncIterator[bytes]:
    """The data of each server-sent event as it arrives, up to ``[DONE]`` (comments and
    other fields skipped), no line or event over ``MAX_EVENT_BYTES``."""
    chunks = response.aiter_bytes()
    pending = bytearray()
    data: list[bytes] = []
    size = 0
    async for chunk in chunks:
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[:end]).removesuffix(b"\r")
            del pending[: end + 1]
            if line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
                size += len(line)
            elif not line and data:
                payload, data, size = b"\n".join(data), [], 0
                if payload.strip() == b"[DONE]":
                    await _drain(chunks, len(pending))
                    return
                yield payload
            # anything else: a comment (": OPENROUTER PROCESSING") or a field not used
        if len(pending) > MAX_EVENT_BYTES or size > MAX_EVENT_BYTES:
            raise ConnectorError("OpenRouter sent an event over 1 MiB")


async def _drain(chunks: AsyncIterator[bytes], read: int) -> None:
    """What follows ``[DONE]``, so the connection can serve the next call; a little, for
    a moment: a longer tail is left unread and the connection closed with the answer."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(TAIL_SECONDS):
            async for data in chunks:
                read += len(data)
                if read > TAIL_BYTES:
                    return


def _error_text(content: bytes) -> str:
    """The service's own explanation (``{"error": {"message"}}``), short and on one line."""
    try:
        data = json.loads(content)
        message = data["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = content.decode("utf-8", "replace")
    text = " ".join(str(message).split())
    return text[:ERROR_TEXT_LIMIT] or "no reason given"


def _retry_after(headers: httpx.Headers) -> float | None:
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None
