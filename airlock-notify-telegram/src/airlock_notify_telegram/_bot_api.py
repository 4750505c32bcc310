"""The Telegram Bot API over httpx, with the bot token kept out of everything we log or raise.

The API wants the token in the path (``/bot<TOKEN>/sendMessage``), and httpx writes the
request URL into its log lines and its exceptions. So requests are built with a
placeholder in place of the token, and a transport swaps the real token in only on the way
to the socket: whatever httpx logs, and every error raised here, carries the placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from airlock.plugin import ApiUnreachable, HttpApi, NotifierError, parse_json

__all__ = ["BotApi", "BotApiError", "valid_token"]

PLACEHOLDER = "***"
TOKEN_PATTERN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,200}$")


def valid_token(token: str) -> bool:
    """Whether *token* looks like a bot token (``123456:ABC-...``) and is safe in a path."""
    return bool(TOKEN_PATTERN.match(token))


class BotApiError(NotifierError):
    """Telegram answered ``{"ok": false, ...}``: ``error_code`` and, on 429, ``retry_after``."""

    def __init__(self, message: str, *, error_code: int, retry_after: float | None = None):
        super().__init__(message)
        self.error_code = error_code
        self.retry_after = retry_after


class _TokenTransport(httpx.AsyncBaseTransport):
    """Puts the real token into the path just before the request leaves."""

    def __init__(self, token: str, inner: httpx.AsyncBaseTransport) -> None:
        self._marker = f"/bot{PLACEHOLDER}/".encode()
        self._real = f"/bot{token}/".encode()
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.replace(self._marker, self._real, 1)
        real = httpx.Request(
            request.method,
            request.url.copy_with(raw_path=path),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(real)

    async def aclose(self) -> None:
        await self._inner.aclose()


class BotApi(HttpApi):
    """Calls Bot API methods; returns ``result`` or raises BotApiError or ApiUnreachable."""

    service = "Telegram Bot API"

    def __init__(
        self,
        api_base: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not valid_token(token):
            # Never echo it: a malformed token may still be most of a real one.
            raise NotifierError(
                "the stored bot token is not in the form 123456:ABC...",
                hint="run `airlock telegram setup` to store it again",
            )
        super().__init__(transport=_TokenTransport(token, transport or httpx.AsyncHTTPTransport()))
        self._token = token
        self._base = f"{api_base.rstrip('/')}/bot{PLACEHOLDER}/"

    def __repr__(self) -> str:
        return f"<BotApi {self._base}>"

    def scrub(self, text: str) -> str:
        """*text* with the token replaced, for anything that came back from the server."""
        return text.replace(self._token, PLACEHOLDER)

    async def call(
        self,
        method: str,
        payload: Mapping[str, Any] | None = None,
        *,
        read_timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        """*method*'s result; an answer over *max_bytes* (1 MiB by default) is AnswerTooLarge."""
        response = await self.request(
            "POST",
            self._base + method,
            json=payload or {},
            read_timeout=read_timeout,
            max_bytes=max_bytes,
        )
        try:
            body = parse_json(response.content)
        except ValueError:
            raise ApiUnreachable(
                self.service, f"HTTP {response.status_code} without JSON"
            ) from None
        if not isinstance(body, dict):
            raise ApiUnreachable(self.service, f"HTTP {response.status_code}: not a Bot API answer")
        if body.get("ok") is True:
            return body.get("result")
        code = body.get("error_code")
        code = code if isinstance(code, int) else response.status_code
        description = self.scrub(str(body.get("description") or "no description"))[:300]
        parameters = body.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        raise BotApiError(
            f"Telegram refused {method}: {description} ({code})",
            error_code=code,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        )
