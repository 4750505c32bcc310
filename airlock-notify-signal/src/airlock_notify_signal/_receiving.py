"""Receiving from signal-cli-rest-api, in whichever mode it runs.

In ``normal``/``native`` mode messages are fetched by long-polling ``GET
/v1/receive/{number}``; in ``json-rpc`` mode the same path is a WebSocket that pushes
one JSON object per text frame. ``GET /v1/about`` says which (``receive: auto``), or the
config fixes it. Either way this yields the raw objects, retries with back-off when the
service is away, and stops when the back-off is closed.

What is read is bounded: a polling answer at 4 MiB (``_rest_api``), a WebSocket frame at
:data:`MAX_FRAME_BYTES` (aiohttp's default is 4 MiB). An answer over its cap is dropped
(logged, with the back-off's wait); a frame over it ends the connection (aiohttp closes
it with 1009), which is opened again. Text that is not JSON, or nested too deeply to
parse, is skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any, Literal

from airlock.plugin import AnswerTooLarge, ApiUnreachable, Backoff, get_logger, parse_json
from airlock_notify_signal._rest_api import SignalApiError, SignalRestApi

__all__ = ["MAX_FRAME_BYTES", "Receiver"]

log = get_logger("airlock.signal")

Mode = Literal["auto", "poll", "websocket"]
MAX_FRAME_BYTES = 1 << 20
"""The largest WebSocket message read (1 MiB): one envelope per frame, a few KiB each."""


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
            except AnswerTooLarge as exc:
                log.warning("signal_receive_dropped", why=exc.kind)
                await self._backoff.failed(f"messages dropped: {exc.kind}")
                continue
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
                    ws = await self._backoff.until_closed(
                        session.ws_connect(url, heartbeat=30, max_msg_size=MAX_FRAME_BYTES)
                    )
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
                                item = parse_json(message.data)
                            except ValueError:
                                log.warning("signal_frame_skipped", why="not JSON")
                                continue
                            yield item
                problem = "the WebSocket was closed"
                if ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                    problem = f"a message over {MAX_FRAME_BYTES >> 20} MiB was refused"
                    log.warning("signal_frame_refused", max_bytes=MAX_FRAME_BYTES)
            except (aiohttp.ClientError, OSError) as exc:
                problem = f"unreachable: {type(exc).__name__}"
            await self._backoff.failed(problem)


def _problem(exc: SignalApiError | ApiUnreachable) -> str:
    if isinstance(exc, ApiUnreachable):
        return f"unreachable: {exc.kind}"
    return exc.message
