"""A local signal-cli-rest-api (bbernhard, release 0.100) speaking its documented wire
format, in either mode:

- ``normal``: ``GET /v1/receive/{number}?timeout=N`` long-polls and drains the queue,
  answering a JSON array of ``{"envelope": ..., "account": ...}``;
- ``json-rpc``: the same path is a WebSocket pushing one such object per text frame. As
  signal-cli-rest-api does (its relay hands a message to a WebSocket's handler only if
  that handler is waiting, and drops it otherwise), messages that come while what was
  written before is still unread (the client not reading, its connection's buffers
  full) are dropped (``relay_dropped``). Messages are relayed :data:`RELAY_BATCH` every
  few milliseconds: signal-cli decrypts one message at a time, it never pours out a
  burst at once.

Polling honours ``max_messages`` (signal-cli leaves the rest on Signal's server for the
next call). ``POST /v2/send`` answers 201 ``{"timestamp": "<ms>"}``, or with
``send_shape="array"`` the later versions' ``[{"timestamp": "<ms>", "errors": {}}]``.
``GET /v1/about`` says the mode. The person (and strangers) act through
:meth:`quote_reply`, :meth:`react`, :meth:`message` and :meth:`flood`; failures are
injected with :meth:`fail`; :meth:`hold_sends` keeps sends unanswered (the notifier
busy) until :meth:`release_sends`; :meth:`stop`/:meth:`start` make an outage and
:meth:`drop_websockets` a dropped connection.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from socket import SO_SNDBUF, SOL_SOCKET
from typing import Any, Literal

from aiohttp import WSMsgType, web

from tests.notifier_harness.threaded_server import ThreadedServer

BOT = "+15550001000"
PERSON = "+15550002000"
PERSON_UUID = "6c0d6a1e-0000-4000-8000-00000000beef"
STRANGER = "+15550006666"

Mode = Literal["normal", "json-rpc"]
ENDLESS_LIMIT = 64 << 20
"""An endless answer gives up after this many bytes (a client without a cap reads it all)."""
RELAY_BATCH = 20
"""Messages relayed to a WebSocket at a time (json-rpc mode)."""


class SignalApiServer:
    def __init__(self, mode: Mode = "normal", send_shape: Literal["object", "array"] = "object"):
        self.mode: str = mode
        self.version = "0.100"
        """What ``GET /v1/about`` says the version is (any text)."""
        self.send_shape = send_shape
        self.sent: list[dict[str, Any]] = []
        self.receive_calls = 0
        self._queue: list[Any] = []
        self._failures: dict[str, list[tuple[int, Any]]] = {}
        self._clock = itertools.count(int(time.time() * 1000))
        self._repeat = False
        self._changed: asyncio.Condition | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._relaying: set[asyncio.WriteTransport] = set()
        self._endless = False
        self.endless_written: list[int] = []
        """Bytes of each endless answer written before the client stopped reading."""
        self.enqueued = 0
        self.handed_over = 0
        """Messages written to a connection, or dropped by the relay (json-rpc mode)."""
        self.relay_dropped = 0
        self.held = 0
        """Sends waiting for :meth:`release_sends`."""
        self._holding = False
        self._released: asyncio.Event | None = None
        self.server = ThreadedServer(self._app)

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/about", self._about)
        app.router.add_get("/v1/accounts", self._accounts)
        app.router.add_post("/v2/send", self._send)
        app.router.add_get("/v1/receive/{number}", self._receive)
        return app

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _injected(self, route: str) -> web.Response | None:
        queued = self._failures.get(route)
        if not queued:
            return None
        status, body = queued.pop(0)
        return web.json_response(body, status=status)

    # -- the REST API ----------------------------------------------------------------------

    async def _about(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "versions": ["v1", "v2"],
                "build": 2,
                "mode": self.mode,
                "version": self.version,
                "capabilities": {"v2/send": ["quotes", "mentions"]},
            }
        )

    async def _accounts(self, request: web.Request) -> web.Response:
        return web.json_response([BOT])

    async def _held(self) -> None:
        """Waits while sends are held (see :meth:`hold_sends`)."""
        if not self._holding:
            return
        self.held += 1
        if self._released is None:
            self._released = asyncio.Event()
        await self._released.wait()
        self.held -= 1

    async def _send(self, request: web.Request) -> web.Response:
        await self._held()
        injected = self._injected("send")
        if injected is not None:
            return injected
        body = await request.json()
        if body.get("number") != BOT:
            return web.json_response(
                {"error": f"User {body.get('number')} is not registered"}, status=400
            )
        if not body.get("recipients") or not isinstance(body.get("message"), str):
            return web.json_response(
                {"error": "Couldn't process request - invalid request"}, status=400
            )
        if self._repeat and self.sent:
            timestamp, self._repeat = self.sent[-1]["timestamp"], False
        else:
            timestamp = next(self._clock)
        self.sent.append({**body, "timestamp": timestamp})
        answer: Any = {"timestamp": str(timestamp)}
        if self.send_shape == "array":
            answer = [{**answer, "errors": {}}]
        return web.json_response(answer, status=201)

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["number"] != BOT:
            return web.json_response({"error": "User is not registered"}, status=400)
        wants_socket = request.headers.get("Upgrade", "").lower() == "websocket"
        if self.mode == "json-rpc" and wants_socket:
            return await self._stream(request)
        if self.mode == "json-rpc" or wants_socket:
            message = "receive over the WebSocket in json-rpc mode, by polling otherwise"
            return web.json_response({"error": message}, status=400)
        self.receive_calls += 1
        if self._endless:
            self._endless = False
            return await self._answer_endless(request)
        injected = self._injected("receive")
        if injected is not None:
            return injected
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(request.query.get("timeout", "1"))
        async with self.changed:
            while not self._queue and (left := deadline - loop.time()) > 0:
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except TimeoutError:
                    break
            most = int(request.query.get("max_messages", "0")) or len(self._queue)
            items, self._queue = self._queue[:most], self._queue[most:]
        return web.json_response(items)

    async def _answer_endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        written = 0
        try:
            await response.write(b'[{"envelope": {"dataMessage": {"message": "')
            while written < ENDLESS_LIMIT:
                await response.write(b"A" * 65536)
                written += 65536
        except (ConnectionError, RuntimeError):
            pass
        self.endless_written.append(written)
        return response

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.add(socket)
        self.receive_calls += 1
        reader = asyncio.ensure_future(_until_closed(socket))
        transport = request.transport
        assert isinstance(transport, asyncio.WriteTransport)
        self._relaying.add(transport)
        # A small send buffer (no autotuning), so a client that stops reading fills it soon.
        transport.get_extra_info("socket").setsockopt(SOL_SOCKET, SO_SNDBUF, 64 << 10)
        try:
            while not socket.closed and not reader.done():
                items = self._queue[:RELAY_BATCH]
                del self._queue[:RELAY_BATCH]
                self.handed_over += len(items)
                if transport.get_write_buffer_size():  # what came before is still unread
                    self.relay_dropped += len(items)  # the handler is blocked: no receiver
                    items = []
                for item in items:
                    text = item if isinstance(item, str) else json.dumps(item)
                    try:
                        await socket.send_str(text)
                    except ConnectionError:  # the client refused a frame and went
                        return socket
                await asyncio.sleep(0.005)  # a test server: checking often is simplest
        finally:
            reader.cancel()
            self._sockets.discard(socket)
            self._relaying.discard(transport)
        return socket

    # -- the people ------------------------------------------------------------------------

    def message(
        self,
        text: str,
        *,
        quote: int | None = None,
        source: str | None = PERSON,
        uuid: str = PERSON_UUID,
        group: bool = False,
        age: float = 0.0,
    ) -> None:
        data: dict[str, Any] = {"message": text, "expiresInSeconds": 0, "viewOnce": False}
        if quote is not None:
            original = next(m for m in self.sent if m["timestamp"] == quote)
            data["quote"] = {
                "id": quote,
                "author": BOT,
                "authorNumber": BOT,
                "authorUuid": "b0700000-0000-4000-8000-000000000000",
                "text": original["message"][:100],
                "attachments": [],
            }
        if group:
            data["groupInfo"] = {"groupId": "Z3JvdXA=", "type": "DELIVER"}
        self._push(source, uuid, data, age)

    def flood(self, text: str, count: int, *, source: str = STRANGER) -> None:
        """*count* messages of *text* from *source* (a stranger), all at once."""
        items = [self._item(source, f"u-{source}", {"message": text}, 0.0) for _ in range(count)]
        self._enqueue(*items)

    def relay_idle(self) -> bool:
        """Every message was handed over, and the WebSockets' connections took all of it."""
        return self.all_handed_over() and not any(
            t.get_write_buffer_size() for t in list(self._relaying)
        )

    def all_handed_over(self) -> bool:
        """Every message was written to a connection or dropped by the relay; True when
        polled (then messages wait here, as on Signal's server)."""
        return self.mode == "normal" or self.handed_over >= self.enqueued

    def same_millisecond(self) -> None:
        """The next message sent gets the previous one's timestamp, as two sends within
        one millisecond would (the timestamp is a message's only identity)."""
        self._repeat = True

    def quote_reply(self, text: str, timestamp: int, **who: Any) -> None:
        self.message(text, quote=timestamp, **who)

    def react(
        self,
        emoji: str,
        timestamp: int,
        *,
        remove: bool = False,
        source: str | None = PERSON,
        uuid: str = PERSON_UUID,
    ) -> None:
        reaction = {
            "emoji": emoji,
            "targetAuthor": BOT,
            "targetAuthorNumber": BOT,
            "targetAuthorUuid": "b0700000-0000-4000-8000-000000000000",
            "targetSentTimestamp": timestamp,
            "isRemove": remove,
        }
        self._push(source, uuid, {"message": None, "reaction": reaction}, 0.0)

    def receipt(self, timestamp: int) -> None:
        """A delivery receipt: no dataMessage, nothing for core."""
        envelope = {
            "source": PERSON,
            "sourceNumber": PERSON,
            "sourceUuid": PERSON_UUID,
            "timestamp": next(self._clock),
            "receiptMessage": {"when": timestamp, "isDelivery": True, "timestamps": [timestamp]},
        }
        self._enqueue({"envelope": envelope, "account": BOT})

    def _push(self, source: str | None, uuid: str, data: dict[str, Any], age: float) -> None:
        self._enqueue(self._item(source, uuid, data, age))

    def _item(
        self, source: str | None, uuid: str, data: dict[str, Any], age: float
    ) -> dict[str, Any]:
        timestamp = next(self._clock) - int(age * 1000)
        envelope = {
            "source": source or uuid,
            "sourceNumber": source,
            "sourceUuid": uuid,
            "sourceName": "Someone",
            "sourceDevice": 1,
            "timestamp": timestamp,
            "dataMessage": {"timestamp": timestamp, **data},
        }
        return {"envelope": envelope, "account": BOT}

    def item(self, item: dict[str, Any]) -> None:
        """A received item as given (``{"envelope", "account"}``)."""
        self._enqueue(item)

    def envelope(self, envelope: dict[str, Any]) -> None:
        """An envelope as given (any types, any size)."""
        self._enqueue({"envelope": envelope, "account": BOT})

    def frame(self, text: str) -> None:
        """A raw WebSocket text frame (json-rpc mode only)."""
        self._enqueue(text)

    def _enqueue(self, *items: Any) -> None:
        async def push() -> None:
            self._queue.extend(items)
            self.enqueued += len(items)
            async with self.changed:
                self.changed.notify_all()

        self.server.call(push())

    # -- failures and outages --------------------------------------------------------------

    def fail(
        self, route: Literal["send", "receive"], status: int, body: Any, times: int = 1
    ) -> None:
        self._failures.setdefault(route, []).extend([(status, body)] * times)

    def hold_sends(self) -> None:
        """Sends from now on wait unanswered (the notifier, sending, is busy)."""
        self._holding = True

    def release_sends(self) -> None:
        """Answers the sends held, and every send after."""

        async def release() -> None:
            self._holding = False
            if self._released is not None:
                self._released.set()

        self.server.call(release())

    def answer_endless(self) -> None:
        """The next polling receive answers a JSON array that never ends."""
        self._endless = True

    def drop_websockets(self) -> None:
        async def drop() -> None:
            for socket in list(self._sockets):
                await socket.close()

        self.server.call(drop())

    def stop(self) -> None:
        self.drop_websockets()
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    def close(self) -> None:
        self.drop_websockets()
        self.server.close()

    def texts(self) -> list[str]:
        return [str(m["message"]) for m in list(self.sent)]

    def prompt_for(self, code: str) -> int | None:
        for sent in list(self.sent):
            if f"access request {code}" in sent["message"]:
                return int(sent["timestamp"])
        return None


async def _until_closed(socket: web.WebSocketResponse) -> None:
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
