"""Receiving from signal-cli-rest-api, in whichever mode it runs.

In ``normal``/``native`` mode messages are fetched by long-polling ``GET
/v1/receive/{number}``; in ``json-rpc`` mode the same path is a WebSocket that pushes
one JSON object per text frame. ``GET /v1/about`` says which (``receive: auto``), or the
config fixes it. Either way this yields the raw objects, retries with back-off when the
service is away, and stops when the back-off is closed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Any, Literal

from airlock.plugin import ApiUnreachable, Backoff
from airlock_notify_signal._rest_api import SignalApiError, SignalRestApi

__all__ = ["Receiver"]

Mode = Literal["auto", "poll", "websocket"]


class Receiver:
    def __init__(self, api: SignalRestApi, backoff: Backoff, *, mode: Mode, wait: int) -> None:
        self._api = api
        self._backoff = backoff
        self._mode = mode
        self._wait = wait
        self.mode_in_use: str | None = None

    async def items(self) -> AsyncGenerator[Any, None]:
        mode = await self._decide()
        if mode is None:
            return
        self.mode_in_use = mode
        source = self._websocket() if mode == "websocket" else self._poll()
        # Closed with us, not later by the garbage collector (it holds a connection).
        async with contextlib.aclosing(source) as stream:
            async for item in stream:
                yield item

    async def _decide(self) -> str | None:
        if self._mode != "auto":
            return self._mode
        while not self._backoff.closed:
            try:
                about = await self._backoff.until_closed(self._api.about())
            except (SignalApiError, ApiUnreachable) as exc:
                await self._backoff.failed(_problem(exc))
                continue
            if about is None:
                return None
            return "websocket" if about.get("mode") == "json-rpc" else "poll"
        return None

    async def _poll(self) -> AsyncGenerator[Any, None]:
        while not self._backoff.closed:
            try:
                batch = await self._backoff.until_closed(self._api.receive(self._wait))
            except (SignalApiError, ApiUnreachable) as exc:
                await self._backoff.failed(_problem(exc))
                continue
            if batch is None:
                return
            self._backoff.succeeded()
            for item in batch:
                yield item

    async def _websocket(self) -> AsyncGenerator[Any, None]:
        import aiohttp

        url = self._api.receive_ws_url()
        while not self._backoff.closed:
            try:
                async with aiohttp.ClientSession() as session:
                    ws = await self._backoff.until_closed(session.ws_connect(url, heartbeat=30))
                    if ws is None:
                        return
                    self._backoff.succeeded()
                    async with ws:
                        while True:
                            message = await self._backoff.until_closed(ws.receive())
                            if message is None:
                                return
                            if message.type != aiohttp.WSMsgType.TEXT:
                                break  # closed or failed: reconnect
                            try:
                                yield json.loads(message.data)
                            except ValueError:
                                continue
                problem = "the WebSocket was closed"
            except (aiohttp.ClientError, OSError) as exc:
                problem = f"unreachable: {type(exc).__name__}"
            await self._backoff.failed(problem)


def _problem(exc: SignalApiError | ApiUnreachable) -> str:
    if isinstance(exc, ApiUnreachable):
        return f"unreachable: {exc.kind}"
    return exc.message
