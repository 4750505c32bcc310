"""httpx's requests sent through aiohttp's connection pool.

The connector speaks httpx (its client, its errors), but httpx's own async transport
(httpcore on anyio) costs about a millisecond more CPU a request than aiohttp's client on
this kind of machine, and a model that answers at once waits for all of it before its first
token. This transport hands each request to one ``aiohttp.ClientSession`` and gives the
answer back to httpx unread, so the body streams chunk by chunk as it arrives.

What it keeps of httpx's behaviour: certificates verified as httpx verifies them
(``httpx.create_ssl_context``: certifi's bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``),
no redirect followed, bodies not decompressed here (httpx decodes ``Content-Encoding``
itself), no cookies kept, httpx's timeouts (connect, and read between two chunks)
applied. It is mounted for ``all://`` only when the environment names no proxy
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``): with one, every request goes through
httpx's own transport, which honours it and ``NO_PROXY``. aiohttp's errors come back as
httpx's, carrying no URL, header or body: the request holds the API key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=httpx.create_ssl_context()),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        limits: dict[str, Any] = request.extensions.get("timeout") or {}
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=limits.get("pool"),  # aiohttp's: a free connection, and connecting
            sock_connect=limits.get("connect"),
            sock_read=limits.get("read"),
        )
        try:
            answer = await self._client().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=await request.aread(),
                allow_redirects=False,
                timeout=timeout,
            )
        except _FAILURES as exc:
            raise _httpx_error(exc, request) from None
        return httpx.Response(
            answer.status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers],
            stream=_Body(answer, request),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class _Body(httpx.AsyncByteStream):
    """The answer's body as it arrives; a body left unread closes its connection."""

    def __init__(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._answer.content.iter_any():
                yield data
        except _FAILURES as exc:
            raise _httpx_error(exc, self._request) from None

    async def aclose(self) -> None:
        if self._answer.content.at_eof():
            self._answer.release()  # read to the end: the connection is reused
        else:
            self._answer.close()


_FAILURES = (aiohttp.ClientError, OSError)  # TimeoutError is an OSError


def _httpx_error(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """httpx's error for aiohttp's *exc*, by kind only (no message: it may quote the URL)."""
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return httpx.ConnectTimeout("connect timed out", request=request)
        return httpx.ReadTimeout("read timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(type(exc).__name__, request=request)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(type(exc).__name__, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(type(exc).__name__, request=request)
    return httpx.ReadError(type(exc).__name__, request=request)
