"""OpenRouter's HTTP API over aiohttp: JSON calls, server-sent events, errors mapped.

One ``aiohttp.ClientSession`` per connector keeps its connections to the service alive.
aiohttp rather than httpx: a model that answers at once waits for every step of the
client before its first token, and httpx's client costs about 0.65 ms more of it here
(docs/openrouter.md, "Time to the first token").

What a careful client does, it does: certificates are verified against the machine's
trust store, or only against the authority ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name when
set (as httpx does), no redirect is followed (the key would go with it), no cookie is
kept, a proxy the environment names is used (``HTTPS_PROXY``, ``HTTP_PROXY`` or
``ALL_PROXY``, unless ``NO_PROXY`` covers the host) and never sees the key of an https
call, and what the service sends back is bounded. The API key
travels only in the ``Authorization`` header of requests to ``api_base``; no message
raised here quotes a URL, a header, a request body or the service's error text for an
authentication failure (a service may echo part of the key back), and the whole key, should
any answer or error quote it back, is withheld from what is passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.request import getproxies, proxy_bypass

import aiohttp
from yarl import URL

from airlock.plugin import (
    ConnectorAuthError,
    ConnectorError,
    InvalidInput,
    ServiceAnswerLost,
    ServiceOutOfCredit,
    ServiceRateLimited,
    ServiceRefused,
)
from airlock_openrouter._withhold import KeyWithholder

__all__ = ["OpenRouterApi"]

CONNECT_SECONDS = 10.0
ERROR_TEXT_LIMIT = 300
MAX_ANSWER_BYTES = 16 << 20
"""The most of a JSON answer read, decompressed (the model list is well under a megabyte)."""
MAX_ERROR_BYTES = 64 << 10
"""The most of an error answer read: only the start of its message is ever shown."""
MAX_EVENT_BYTES = 1 << 20
"""The most one server-sent event (or one line of it) may hold."""
TAIL_BYTES, TAIL_SECONDS = 64 << 10, 2.0
"""What is read after ``[DONE]`` so the connection can serve again; past either, it is
closed instead (a service must not keep a finished call open by dripping bytes)."""


class OpenRouterApi:
    def __init__(self, api_base: str, api_key: str, *, service: str, timeout: float) -> None:
        self.service = service
        self._base = api_base.rstrip("/") + "/"
        # Per request, never a session default: aiohttp copies a session's default
        # headers into a proxy's CONNECT request, which travels outside TLS.
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "X-Title": "Airlock",
            "User-Agent": "airlock-openrouter",
        }
        self._withhold = KeyWithholder(api_key)
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=CONNECT_SECONDS, sock_read=timeout
        )
        self._proxy = _proxy_for(URL(self._base))
        self._unusable_proxy = ""
        if self._proxy is not None and URL(self._proxy).scheme not in ("http", "https"):
            # Never quote the value: it may carry the proxy's user name and password.
            self._unusable_proxy = (
                "the environment names a proxy for OpenRouter that is not an HTTP proxy "
                "(SOCKS?); the connector speaks through HTTP proxies only"
            )
        self._session: aiohttp.ClientSession | None = None
        self._answers: set[aiohttp.StreamReader] = set()
        """The bodies of answers being read."""

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=_trust()),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=self._timeout,
            )
        return self._session

    async def aclose(self) -> None:
        answers, self._answers = self._answers, set()
        for content in answers:
            content.set_exception(
                ServiceAnswerLost(
                    f"the call on service {self.service!r} was stopped before its answer "
                    "came: the connector was closed"
                )
            )
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def get(self, path: str) -> dict[str, Any]:
        return await self._json("GET", path, None)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", path, body)

    async def _json(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            async with self._client().request(
                method, self._base + path, **self._options(body)
            ) as response:
                with self._reading(response):
                    await self._refuse_failure(response)
                    return self._object(await _read(response, MAX_ANSWER_BYTES))
        except _FAILURES as exc:
            raise _unreachable(exc) from None

    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST *body* and yield each server-sent event's JSON as it arrives."""
        try:
            async with self._client().post(self._base + path, **self._options(body)) as response:
                with self._reading(response):
                    await self._refuse_failure(response)
                    async for payload in _events(response.content):
                        yield self._object(payload)
        except _FAILURES as exc:
            raise _unreachable(exc) from None

    @contextlib.contextmanager
    def _reading(self, response: aiohttp.ClientResponse) -> Iterator[None]:
        """While *response* is read: :meth:`aclose` ends the reading at once (aiohttp's own
        close drops the connection but leaves its reader waiting, its timeout gone)."""
        self._answers.add(response.content)
        try:
            yield
        finally:
            self._answers.discard(response.content)

    def _options(self, body: dict[str, Any] | None) -> dict[str, Any]:
        """A request's options. A response left unread (an error raised, the caller gone)
        closes its connection when its ``async with`` ends; one read to the end goes back
        to the pool."""
        if self._unusable_proxy:
            raise ServiceRefused(self._unusable_proxy)
        return {
            "json": body,
            "headers": self._headers,
            "allow_redirects": False,
            "proxy": self._proxy,
        }

    def _error_text(self, content: bytes) -> str:
        """The service's own explanation (``{"error": {"message"}}``, or the JSON it sent
        in another shape), short and on one line, the key withheld before it is cut short
        (no part of it shows). *content* may have been cut at ``MAX_ERROR_BYTES``."""
        message: Any
        try:
            data = self._withhold.read_json(content)
        except ValueError:
            message = self._withhold.shown(content, cut=len(content) >= MAX_ERROR_BYTES)
            if message is None:
                return "the reason it gave is not shown (it could hide the key)"
        else:
            error = data.get("error") if isinstance(data, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            if message is None:
                message = json.dumps(data, ensure_ascii=False)
        text = " ".join(self._withhold.from_text(str(message)).split())
        return text[:ERROR_TEXT_LIMIT] or "no reason given"

    async def _refuse_failure(self, response: aiohttp.ClientResponse) -> None:
        """Raise what an answer that is not a success means (a redirect included: the
        key does not follow it)."""
        if response.status >= 400:
            content = await _read(response, MAX_ERROR_BYTES, cut=True)
            raise self._error(response.status, response.headers, content)
        if response.status >= 300:
            raise ServiceRefused(f"OpenRouter answered with a redirect (HTTP {response.status})")

    def _object(self, content: bytes) -> dict[str, Any]:
        """A successful answer's JSON object (one that cannot be read was lost: the call
        may have cost)."""
        try:
            # Without the key, should the service quote it back (a proxy's or a
            # provider's message echoing the request's headers), however it spells it.
            data = self._withhold.read_json(content)
        except ValueError:
            raise ServiceAnswerLost("OpenRouter sent something that is not JSON") from None
        if not isinstance(data, dict):
            raise ServiceAnswerLost("OpenRouter sent JSON that is not an object")
        return data

    def _error(self, status: int, headers: Mapping[str, str], content: bytes) -> Exception:
        text = self._error_text(content)
        if status == 401:
            # The person fixes this, not the agent: no detail that could echo the key.
            return ConnectorAuthError(
                f"OpenRouter refused the API key stored for service {self.service!r} "
                f"(HTTP {status}); the person has been told",
            )
        if status == 403 and "key limit" in text.lower():
            # The spending limit the person set on the key: theirs to raise.
            return ServiceOutOfCredit(
                "the OpenRouter key has reached the spending limit set on it",
                hint="the person can raise it at https://openrouter.ai/settings/keys",
            )
        if status == 403:
            # Otherwise OpenRouter's moderation flagged the input: the agent's text, not
            # the key (an agent must not be able to have the key reported refused).
            return ServiceRefused(
                f"OpenRouter refused the input (HTTP 403): {text}",
                hint="nothing was charged; change the input or pick another model",
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
            return ServiceRefused(f"OpenRouter failed: HTTP {status}")
        return InvalidInput(f"OpenRouter refused the request (HTTP {status}): {text}")


_FAILURES = (aiohttp.ClientError, OSError)  # TimeoutError is an OSError


_NOT_SENT = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ClientHttpProxyError,
)
"""Failures to connect (to the service, or through the proxy): the request never left."""


def _unreachable(exc: BaseException) -> ConnectorError:
    """The error for a request that failed on its way, by kind only: aiohttp's messages
    may quote the URL, and a proxy's may quote more. Nor does it keep *exc* as its
    context: aiohttp's errors carry the request's headers, the key among them. Once
    connected, the request may have reached the service: its answer is lost
    (:class:`ServiceAnswerLost`), and a spend call counted at its reservation."""
    exc.__context__ = exc.__cause__ = None
    error: ConnectorError
    if isinstance(exc, _NOT_SENT):
        error = ServiceRefused(f"OpenRouter unreachable: {type(exc).__name__}")
    elif isinstance(exc, TimeoutError):
        error = ServiceAnswerLost(f"OpenRouter did not answer in time ({type(exc).__name__})")
    else:
        error = ServiceAnswerLost(f"OpenRouter's answer was cut off: {type(exc).__name__}")
    error.__suppress_context__ = True
    return error


def _proxy_for(url: URL) -> str | None:
    """The proxy the environment names for *url* (as curl and httpx read it: a value
    without a scheme is an HTTP proxy), or None."""
    proxies = getproxies()
    if url.host is None or proxy_bypass(f"{url.host}:{url.port}"):  # NO_PROXY
        return None
    found = proxies.get(url.scheme) or proxies.get("all") or None
    if found is not None and "://" not in found:
        found = "http://" + found
    return found


def _trust() -> ssl.SSLContext:
    """Certificates the connector trusts: the authority ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
    name, and only those, when set (as httpx does); else the machine's trust store."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=cafile, capath=capath)


async def _read(response: aiohttp.ClientResponse, limit: int, *, cut: bool = False) -> bytes:
    """The answer's body (decompressed), at most *limit* bytes: more is refused, or with
    *cut* left unread."""
    body = bytearray()
    async for data in response.content.iter_any():
        body += data
        if len(body) > limit:
            if cut:
                return bytes(body[:limit])
            raise ServiceAnswerLost(f"OpenRouter's answer is over {limit >> 20} MiB")
    return bytes(body)


async def _events(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The data of each server-sent event as it arrives, up to ``[DONE]`` (comments and
    other fields skipped), no line or event over ``MAX_EVENT_BYTES``. A stream that ends
    before ``[DONE]`` was cut short: the agent must not take it for a whole answer."""
    pending = bytearray()
    data: list[bytes] = []
    size = 0
    async for chunk in content.iter_any():
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
                    await _drain(content, len(pending))
                    return
                yield payload
            # anything else: a comment (": OPENROUTER PROCESSING") or a field not used
        if len(pending) > MAX_EVENT_BYTES or size > MAX_EVENT_BYTES:
            raise ServiceAnswerLost("OpenRouter sent an event over 1 MiB")
    raise ServiceAnswerLost("OpenRouter's stream ended before [DONE]: the answer was cut short")


async def _drain(content: aiohttp.StreamReader, read: int) -> None:
    """What follows ``[DONE]``, so the connection can serve the next call; a little, for
    a moment: a longer tail is left unread and the connection closed with the answer."""
    # The answer is whole already (closing the client meanwhile takes nothing from it).
    with contextlib.suppress(TimeoutError, ServiceAnswerLost, *_FAILURES):
        async with asyncio.timeout(TAIL_SECONDS):
            async for data in content.iter_any():
                read += len(data)
                if read > TAIL_BYTES:
                    return


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None
