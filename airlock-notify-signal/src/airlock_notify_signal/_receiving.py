"""Receiving from signal-cli-rest-api, in whichever mode it runs.

In ``normal``/``native`` mode messages are fetched by long-polling ``GET
/v1/receive/{number}``; in ``json-rpc`` mode the same path is a WebSocket that pushes
one JSON object per text frame. ``GET /v1/about`` says which (``receive: auto``), or the
config fixes it. Either way this yields the raw objects, retries with back-off when the
service is away, and stops when the back-off is closed.

Polling takes at most ``MAX_POLLED`` messages an answer (the rest wait on Signal's
server), read up to 4 MiB (``_rest_api``); an answer over that is dropped (logged, with
the back-off's wait).

signal-cli-rest-api hands a message to a WebSocket only if it is ready to take it at
that moment, and drops it otherwise (it keeps nothing, nor while no WebSocket is open).
So the WebSocket is read at once, whatever core does with the message before, into
``_waiting``, where the person's messages wait apart from everyone else's. A frame over
:data:`MAX_FRAME_TEXT` is skipped unparsed, and the connection goes on. aiohttp cannot
skip a frame over its own cap (it refuses it from its header and closes the connection
with 1009), so that cap is :data:`MAX_SKIPPED_FRAME_BYTES`, which no Signal message
reaches; a frame over it is a stream gone wrong. Text that is not JSON, or nested too
deeply to parse, is skipped. A connection that ends (closed, refused a frame, failed)
after it brought messages is followed by the next at once; one that ends before its
first waits the back-off's time (a stream that keeps going wrong, a service away).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, Literal

from airlock.plugin import AnswerTooLarge, ApiUnreachable, Backoff, get_logger, parse_json
from airlock_notify_signal._envelopes import for_another_account
from airlock_notify_signal._rest_api import SignalApiError, SignalRestApi
from airlock_notify_signal._waiting import ENDED, Person, Waiting

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_FRAME_TEXT", "MAX_SKIPPED_FRAME_BYTES", "Receiver"]

log = get_logger("airlock.signal")

Mode = Literal["auto", "poll", "websocket"]
MAX_FRAME_TEXT = 1 << 20
"""The longest WebSocket message parsed (1 Mi characters, as aiohttp hands over text):
one envelope per frame, a few KiB each."""
MAX_SKIPPED_FRAME_BYTES = 16 << 20
"""The largest WebSocket message taken off the connection at all (16 MiB; aiohttp's
``max_msg_size``). Signal's server takes at most 256 KiB of content for a message, which
signal-cli writes as at most a few MiB of JSON, even with every character a six-byte
escape: a stranger cannot make a frame this long, so none ends the connection."""


class Receiver:
    def __init__(
        self, api: SignalRestApi, backoff: Backoff, *, mode: Mode, wait: int, person: Person
    ) -> None:
        self._api = api
        self._backoff = backoff
        self._mode = mode
        self._wait = wait
        self._person = person
        self.mode_in_use: str | None = None
        self.unread: deque[Any] = deque()
        """Received and not yielded: what :meth:`items` yields first, and what it had not
        yielded when it was closed, for a receiver taking over from this one (a reload:
        Signal hands a message over once)."""

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
        while True:
            # What was carried over first, then each batch: drained from the service, it
            # is kept here until yielded (see ``unread``).
            while self.unread:
                yield self.unread.popleft()
            if self._backoff.closed:
                return
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
            self.unread += (i for i in batch if not for_another_account(i, self._api.number))

    async def _websocket(self) -> AsyncGenerator[Any, None]:
        waiting = Waiting()
        keeping = asyncio.ensure_future(self._keep_open(waiting))
        try:
            while self.unread:  # while the WebSocket opens: nothing is lost meanwhile
                yield self.unread.popleft()
                await asyncio.sleep(0)  # lets it start opening before the next
            while (item := await self._backoff.until_closed(waiting.get())) is not ENDED:
                if item is None:
                    return  # closed with us
                yield item
            await keeping  # it ended: raise what ended it, if anything did
        finally:
            keeping.cancel()
            await asyncio.gather(keeping, return_exceptions=True)
            self.unread += waiting.take_all()

    async def _keep_open(self, waiting: Waiting) -> None:
        """Keep a WebSocket open and read into *waiting* whatever it brings, whether or
        not anyone reads from *waiting* meanwhile, until the back-off is closed."""
        import aiohttp

        url = self._api.receive_ws_url()
        try:
            while not self._backoff.closed:
                frames = 0
                try:
                    async with aiohttp.ClientSession() as session:
                        ws = await self._backoff.until_closed(
                            session.ws_connect(
                                url, heartbeat=30, max_msg_size=MAX_SKIPPED_FRAME_BYTES
                            )
                        )
                        if ws is None:
                            return
                        self._backoff.succeeded()
                        async with ws:
                            frames = await self._read(ws, waiting)
                    problem = "the WebSocket was closed"
                    if ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                        problem = f"a message over {MAX_SKIPPED_FRAME_BYTES >> 20} MiB was refused"
                        log.warning("signal_frame_refused", max_bytes=MAX_SKIPPED_FRAME_BYTES)
                except (aiohttp.ClientError, OSError) as exc:
                    problem = f"unreachable: {type(exc).__name__}"
                if frames:
                    # It worked until then, and signal-cli-rest-api keeps nothing while
                    # no WebSocket is open: the next is opened at once. One that fails
                    # before its first message waits (a stream that keeps going wrong).
                    log.info("signal_websocket_reopened", why=problem)
                    continue
                await self._backoff.failed(problem)
        finally:
            waiting.end()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, waiting: Waiting) -> int:
        """Take every frame off *ws* into *waiting* until it closes; how many came."""
        import aiohttp

        frames = 0
        while (message := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
            frames += 1
            text: str = message.data
            if len(text) > MAX_FRAME_TEXT:
                log.warning("signal_frame_skipped", why=f"over {MAX_FRAME_TEXT} characters")
                continue
            try:
                item = parse_json(text)
            except ValueError:
                log.warning("signal_frame_skipped", why="not JSON")
                continue
            # "null" is nothing (and None is "closed" to the reader); another account's
            # message takes no place among those waiting.
            if item is not None and not for_another_account(item, self._api.number):
                waiting.put(item, len(text), person=self._person.wrote(item))
        return frames  # closed or failed: the caller opens another


def _problem(exc: SignalApiError | ApiUnreachable) -> str:
    if isinstance(exc, ApiUnreachable):
        return f"unreachable: {exc.kind}"
    return exc.message
