"""A local signal-cli JSON-RPC daemon (``signal-cli -a BOT daemon --socket PATH``) speaking
its documented wire format (signal-cli-jsonrpc(5)): one JSON object per line on a Unix
socket, ``send`` answering ``{"timestamp": ms, "results": [...]}``, ``version``,
``subscribeReceive`` answering a subscription id, and incoming messages as ``receive``
notifications.

As signal-cli does, in the default ``on-start`` receive mode every connection gets each
message plain (``params`` is ``{"envelope", "account"}``) and, once it subscribed, again
wrapped (``{"subscription": id, "result": ...}``); in ``manual`` mode only subscribers get
them, wrapped, and messages wait (as on Signal's server) until one is there.

The people's side (:meth:`message`, :meth:`quote_reply`, :meth:`react`, ...) and the
record of what was sent are the REST stand-in's (:class:`SignalApiServer`): the same
scenarios drive both. The socket is created with the given mode bits; :meth:`stop` and
:meth:`start` close and reopen it. ``fail("send", code, message)`` makes the next send a
JSON-RPC error, or, with a dict as *message*, answers that dict as given; a send held by
``hold_sends`` holds the requests behind it on that connection, not its notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from tests.signal.signal_api_server import BOT, ENDLESS_LIMIT, SignalApiServer


class SignalCliSocketServer(SignalApiServer):
    def __init__(
        self, receive_mode: Literal["on-start", "manual"] = "on-start", socket_mode: int = 0o700
    ) -> None:
        super().__init__(mode="normal")
        self.mode = "socket"
        self.receive_mode = receive_mode
        self.socket_mode = socket_mode
        self._folder = Path(tempfile.mkdtemp(prefix="signal-cli-"))  # short: sun_path is 108
        self.path = str(self._folder / "socket")
        self.requests: list[dict[str, Any]] = []
        self.accounts: list[str] | None = None
        """A multi-account daemon's accounts (``listAccounts``); None: a single-account
        daemon (``-a BOT``), which has no such method."""
        self._unix: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._writing: set[asyncio.Future[None]] = set()
        self._subscriptions = 0
        self.server.call(self._open())

    async def _open(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._unix = await asyncio.start_unix_server(self._serve, self.path, limit=64 << 20)
        os.chmod(self.path, self.socket_mode)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        self.receive_calls += 1
        subscriptions: list[int] = []
        pushing = asyncio.ensure_future(self._push_to(writer, subscriptions))
        try:
            while line := await reader.readline():
                request = json.loads(line)
                self.requests.append(request)
                if request.get("method") == "send":
                    await self._held()
                answer = self._answer(request, subscriptions)
                writer.write(json.dumps({"jsonrpc": "2.0", "id": request["id"], **answer}).encode())
                writer.write(b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            pushing.cancel()
            self._connections.discard(writer)
            writer.close()

    def _answer(self, request: dict[str, Any], subscriptions: list[int]) -> dict[str, Any]:
        params = request.get("params") or {}
        if params.get("account", BOT) != BOT:
            return _error(-32602, "Specified account does not exist")
        method = request.get("method")
        if method == "version":
            return {"result": {"version": "0.13.22"}}
        if method == "listAccounts" and self.accounts is not None:
            return {"result": [{"number": n} for n in self.accounts]}
        if method == "subscribeReceive":
            subscriptions.append(self._subscriptions)
            self._subscriptions += 1
            return {"result": subscriptions[-1]}
        if method != "send":
            return _error(-32601, "Method not implemented")
        queued = self._failures.get("send")
        if queued:
            code, message = queued.pop(0)
            return message if isinstance(message, dict) else _error(code, message)
        if self._repeat and self.sent:
            timestamp, self._repeat = self.sent[-1]["timestamp"], False
        else:
            timestamp = next(self._clock)
        self.sent.append({**params, "timestamp": timestamp})
        results = [
            {"recipientAddress": {"number": r}, "type": "SUCCESS"} for r in params["recipient"]
        ]
        return {"result": {"timestamp": timestamp, "results": results}}

    async def _push_to(self, writer: asyncio.StreamWriter, subscriptions: list[int]) -> None:
        while not writer.is_closing():
            if self.receive_mode == "on-start" or subscriptions:
                items, self._queue = self._queue, []
                for item in items:
                    writer.write(self._notifications(item, subscriptions))
                self.handed_over += len(items)
                await writer.drain()
            await asyncio.sleep(0.005)  # a test server: checking often is simplest

    def _notifications(self, item: Any, subscriptions: list[int]) -> bytes:
        if isinstance(item, str):
            return item.encode() + b"\n"  # a raw line, as given
        params: list[Any] = [{"subscription": s, "result": item} for s in subscriptions]
        if self.receive_mode == "on-start":
            params.insert(0, item)
        notes = [{"jsonrpc": "2.0", "method": "receive", "params": p} for p in params]
        return b"".join(json.dumps(n).encode() + b"\n" for n in notes)

    def line(self, text: str) -> None:
        """A raw line on the socket, as given."""
        self.frame(text)

    def item(self, item: dict[str, Any]) -> None:
        """A received item as given (``{"envelope", "account"}``)."""
        self._enqueue(item)

    def endless_line(self) -> None:
        """A line that never ends on every connection (a stream gone wrong), written until
        the client closes the connection or :data:`ENDLESS_LIMIT` bytes went; each count
        of bytes written goes into ``endless_written``."""

        async def write(writer: asyncio.StreamWriter) -> None:
            written, chunk = 0, b"x" * (64 << 10)
            try:
                while written < ENDLESS_LIMIT and not writer.is_closing():
                    writer.write(chunk)
                    await writer.drain()
                    written += len(chunk)
            except ConnectionError:
                pass
            self.endless_written.append(written)
            writer.close()

        async def start() -> None:
            for writer in list(self._connections):
                self._writing.add(asyncio.ensure_future(write(writer)))

        self.server.call(start())

    def cut_off(self, text: str) -> None:
        """*text* without its newline on every connection, which then closes: a connection
        lost mid-line."""

        async def cut() -> None:
            for writer in list(self._connections):
                writer.write(text.encode())
                await writer.drain()
                writer.close()

        self.server.call(cut())

    def drop_websockets(self) -> None:
        """Drops every connection (the REST stand-in's name for it)."""

        async def drop() -> None:
            for writer in list(self._connections):
                writer.close()

        self.server.call(drop())

    def stop(self) -> None:
        async def down() -> None:
            if self._unix is not None:
                self._unix.close()
                self._unix = None

        self.server.call(down())
        self.drop_websockets()

    def start(self) -> None:
        self.server.call(self._open())

    def close(self) -> None:
        self.stop()
        super().close()
        shutil.rmtree(self._folder, ignore_errors=True)


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "data": None}}
