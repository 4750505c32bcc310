"""signal-cli-rest-api (bbernhard) over httpx: about, accounts, ``POST /v2/send`` and the
polling ``GET /v1/receive/{number}``. The WebSocket of json-rpc mode is in ``_receiving``.

``/v2/send`` answers ``{"timestamp": "<ms>"}`` in release 0.100 and an array of such
objects (with per-recipient ``errors``) in later versions; both are read. The timestamp
is the message's identity in Signal: a quote-reply or a reaction names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from airlock.plugin import HttpApi, NotifierError, parse_json

__all__ = ["MAX_POLLED", "MAX_RECEIVE_BYTES", "SignalApiError", "SignalRestApi"]

MAX_RECEIVE_BYTES = 4 << 20
"""The largest answer of a polling receive read (4 MiB); other answers stop at 1 MiB.
An envelope is a few KiB (attachments are not in it), so this is hundreds of messages."""
MAX_POLLED = 100
"""The most messages one polling receive asks for (``max_messages``): signal-cli leaves
the rest on Signal's server for the next call, so a burst is fetched in parts, each
under :data:`MAX_RECEIVE_BYTES`, instead of in one answer over it, lost whole. An
envelope holding the longest text Signal apps send inline (2,000 bytes) is at most
13 KiB, even with every character written as a six-byte escape."""


class SignalApiError(NotifierError):
    """The REST API answered with an error (``http_status``; 429: Signal wants a captcha)."""

    def __init__(self, message: str, *, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class SignalRestApi(HttpApi):
    service = "signal-cli-rest-api"

    def __init__(
        self, api_base: str, number: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(transport=transport)
        self.api_base = api_base.rstrip("/")
        self.number = number

    @property
    def receive_path(self) -> str:
        return f"/v1/receive/{quote(self.number, safe='+')}"

    def receive_ws_url(self) -> str:
        """The json-rpc mode WebSocket: the receive path on ws:// (or wss://)."""
        return "ws" + self.api_base.removeprefix("http") + self.receive_path

    async def about(self) -> dict[str, Any]:
        about = await self._request("GET", "/v1/about")
        return about if isinstance(about, dict) else {}

    async def accounts(self) -> list[str]:
        accounts = await self._request("GET", "/v1/accounts")
        return [str(a) for a in accounts] if isinstance(accounts, list) else []

    async def send(self, recipient: str, message: str, **extra: Any) -> int:
        """Send *message*; returns its timestamp (ms), the id replies will quote."""
        body = {
            "number": self.number,
            "recipients": [recipient],
            "message": message,
            "text_mode": "normal",  # never "styled": agent text must not become formatting
            **{k: v for k, v in extra.items() if v is not None},
        }
        answer = await self._request("POST", "/v2/send", body)
        return _timestamp(answer)

    async def receive(self, wait: int) -> list[Any]:
        """Up to :data:`MAX_POLLED` queued messages (the call takes them off the queue),
        waiting up to *wait* s for one.

        An answer over :data:`MAX_RECEIVE_BYTES` is AnswerTooLarge: the messages it took
        are lost, and the next call starts afresh.
        """
        items = await self._request(
            "GET",
            f"{self.receive_path}?timeout={wait}&max_messages={MAX_POLLED}",
            read_timeout=wait + 10,
            max_bytes=MAX_RECEIVE_BYTES,
        )
        return items if isinstance(items, list) else []

    async def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        read_timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        response = await self.request(
            method, self.api_base + path, json=body, read_timeout=read_timeout, max_bytes=max_bytes
        )
        try:
            answer = parse_json(response.content) if response.content else None
        except ValueError:
            answer = None
        if response.is_success:
            return answer
        raise SignalApiError(
            _error_text(response.status_code, answer), http_status=response.status_code
        )


def _timestamp(answer: Any) -> int:
    first = answer[0] if isinstance(answer, list) and answer else answer
    if not isinstance(first, dict):
        raise NotifierError("signal: /v2/send answered without a timestamp")
    errors = first.get("errors")
    if errors:
        raise NotifierError(f"signal: the message was not delivered: {str(errors)[:200]}")
    try:
        return int(first["timestamp"])
    except (KeyError, TypeError, ValueError):
        raise NotifierError("signal: /v2/send answered without a timestamp") from None


def _error_text(status: int, answer: Any) -> str:
    if status == 429:
        return (
            "rate limited by Signal: it wants a captcha solved "
            "(see signal-cli-rest-api's docs on rate limit challenges)"
        )
    detail = answer.get("error") if isinstance(answer, dict) else None
    return f"signal-cli-rest-api refused ({status}): {str(detail or 'no detail')[:200]}"
