"""signal-cli's own JSON-RPC daemon on a Unix socket (``signal-cli -a NUMBER daemon
--socket PATH``): prompts sent and answers received over one connection.

Unlike signal-cli-rest-api, which answers anyone who reaches its loopback port, the socket
is a file, and the connection is opened with ``open_private_socket``: only a socket that
no other user can connect to, served by a process of its owner, is used. In isolated mode
signal-cli runs as the daemon's user, so agent users cannot read the person's replies
(codes included) or send from the number.

The wire (signal-cli-jsonrpc(5)): one JSON object per line. Every request names the
account (a multi-account daemon needs it; a single-account one ignores it). Once
connected the client asks ``subscribeReceive`` (needed when signal-cli runs with
``--receive-mode=manual``, which keeps messages on Signal's server while Airlock is away);
messages come as ``receive`` notifications, plain (``params`` is ``{"envelope",
"account"}``: the default on-start mode) or wrapped (``params.result``, with
``params.subscription``). In on-start mode both come for one message, so an envelope
seen already (same sender, device and timestamp) is passed on once: a code read twice
would count as a wrong one the second time. Messages for another account are dropped.
Both happen as a message arrives, before it takes a place among those waiting to be
read, where the person's wait apart from everyone else's (``_waiting``); so does the
memory of envelopes seen, so a stranger's burst cannot push the person's out of it.

What is read is bounded: a line over :data:`MAX_LINE_BYTES` (a stranger's message can
make one), a line that is not JSON, or nested too deeply to parse, is skipped and the
connection goes on (a line over :data:`MAX_SKIPPED_BYTES` ends it); what waits to be
read is bounded in ``_waiting``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from typing import Any

from airlock.plugin import (
    ApiUnreachable,
    Backoff,
    NotifierError,
    SocketNotPrivate,
    get_logger,
    open_private_socket,
    parse_json,
    untrusted_line,
)
from airlock_notify_signal._envelopes import for_another_account
from airlock_notify_signal._waiting import ENDED, Person, Waiting

__all__ = ["MAX_LINE_BYTES", "MAX_SKIPPED_BYTES", "SignalCli", "SignalCliError"]

log = get_logger("airlock.signal")

SERVICE = "signal-cli"
MAX_LINE_BYTES = 1 << 20
"""The longest line read (1 MiB): one envelope per line, a few KiB each."""
MAX_SKIPPED_BYTES = 16 * MAX_LINE_BYTES
"""A line over the cap is skipped up to this many bytes (16 MiB, far more than a
stranger's message makes with every character written as a six-byte escape); one longer
still is no message but a stream gone wrong, and ends the connection."""
REMEMBERED_ENVELOPES = 1024
"""Envelopes remembered to pass each on once, the person's and everyone else's apart."""
METHOD_NOT_FOUND = -32601
DEFAULT_TIMEOUT = 15.0

Admit = Callable[[Any], tuple[Any, bool] | None]
"""A notification's ``params`` as ``(item, the person's)`` to wait for reading, or None."""


class SignalCliError(NotifierError):
    """signal-cli answered a request with an error (``rpc_code``: its JSON-RPC code)."""

    def __init__(self, message: str, *, rpc_code: object) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code


class _Connection:
    """One open connection: answers matched to requests by id, messages waiting."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, admit: Admit
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._admit = admit
        self._answers: dict[str, asyncio.Future[Any]] = {}
        self._idle = asyncio.Event()
        """Set while no answer is awaited."""
        self._idle.set()
        self._ids = itertools.count(1)
        self._waiting = Waiting()
        self.subscribed = False
        self.problem = "signal-cli closed the connection"
        self._reading = asyncio.ensure_future(self._read())

    @property
    def is_open(self) -> bool:
        return not self._reading.done()

    async def call(self, method: str, params: dict[str, Any], within: float) -> Any:
        if not self.is_open:
            raise ApiUnreachable(SERVICE, self.problem)
        ident = str(next(self._ids))
        answer = asyncio.get_running_loop().create_future()
        self._answers[ident] = answer
        self._idle.clear()
        request = {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}
        try:
            self._writer.write(json.dumps(request).encode() + b"\n")
            await self._writer.drain()
            return await asyncio.wait_for(answer, within)
        except TimeoutError:
            raise ApiUnreachable(SERVICE, f"no answer to {method} within {within:.0f}s") from None
        except OSError as exc:
            raise ApiUnreachable(SERVICE, type(exc).__name__) from None
        finally:
            self._answers.pop(ident, None)
            if not self._answers:
                self._idle.set()

    async def item(self) -> Any:
        """The next message (``{"envelope", "account"}``), or ``ENDED`` once the
        connection ended and nothing waits."""
        return await self._waiting.get()

    async def close_when_idle(self, within: float) -> None:
        """Close once no answer is awaited (a send in flight finishes), *within* seconds
        at most."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._idle.wait()
        await self.close()

    async def close(self) -> None:
        self._reading.cancel()
        await asyncio.gather(self._reading, return_exceptions=True)

    async def _read(self) -> None:
        try:
            while True:
                try:
                    line = await self._reader.readuntil(b"\n")
                except asyncio.LimitOverrunError:  # over the StreamReader's limit
                    log.warning("signal_line_skipped", why=f"over {MAX_LINE_BYTES} bytes")
                    if not await _skip_line(self._reader):
                        self.problem = f"a line over {MAX_SKIPPED_BYTES >> 20} MiB came"
                        return
                    continue
                self._take(line)
        except asyncio.IncompleteReadError:
            pass  # closed, perhaps mid-line: what came of that line is not read
        except OSError as exc:
            self.problem = f"unreachable: {type(exc).__name__}"
        finally:
            for answer in self._answers.values():
                if not answer.done():
                    answer.set_exception(ApiUnreachable(SERVICE, self.problem))
            self._waiting.end()
            self._writer.close()

    def _take(self, line: bytes) -> None:
        try:
            message = parse_json(line)
        except ValueError:
            log.warning("signal_line_skipped", why="not JSON")
            return
        if not isinstance(message, dict):
            return
        if message.get("method") == "receive" and "id" not in message:
            admitted = self._admit(message.get("params"))
            if admitted is not None:
                item, person = admitted
                self._waiting.put(item, len(line), person=person)
            return
        ident = message.get("id")
        answer = self._answers.get(ident) if isinstance(ident, str) else None
        if answer is None or answer.done():
            return
        error = message.get("error")
        if error is not None:
            answer.set_exception(_error(error))
        else:
            answer.set_result(message.get("result"))


class SignalCli:
    """The account *number* on signal-cli's JSON-RPC socket at *path*; *person* is who
    the messages to read are from (None: nobody's are told apart, for sending only)."""

    def __init__(
        self,
        path: str,
        number: str,
        *,
        person: Person | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.path = path
        self.number = number
        self._person = person or Person(None)
        self._seen: dict[bool, OrderedDict[tuple[Any, ...], None]] = {
            True: OrderedDict(),
            False: OrderedDict(),
        }
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._opening = asyncio.Lock()

    async def call(self, method: str, **params: Any) -> Any:
        connection = await self._connected()
        return await connection.call(method, {"account": self.number, **params}, self._timeout)

    async def version(self) -> str:
        answer = await self.call("version")
        version = answer.get("version") if isinstance(answer, dict) else None
        return untrusted_line(str(version or "?"), 40)

    async def send(
        self,
        recipient: str,
        message: str,
        *,
        quote_timestamp: int | None = None,
        quote_author: str | None = None,
    ) -> int:
        """Send *message*; returns its timestamp (ms), the id replies will quote."""
        quote: dict[str, Any] = {}
        if quote_timestamp is not None:
            quote = {"quoteTimestamp": quote_timestamp, "quoteAuthor": quote_author}
        answer = await self.call("send", recipient=[recipient], message=message, **quote)
        return _timestamp(answer)

    async def items(self, backoff: Backoff) -> AsyncGenerator[Any, None]:
        """Received messages as ``{"envelope", "account"}`` objects, for as long as
        *backoff* is open; a lost connection is opened again after its wait."""
        while not backoff.closed:
            try:
                connection = await backoff.until_closed(self._subscribed())
                if connection is None:
                    return
                backoff.succeeded()
                while (item := await backoff.until_closed(connection.item())) is not ENDED:
                    if item is None:
                        return  # closed with us
                    yield item
                problem = connection.problem
            except ApiUnreachable as exc:
                problem = f"unreachable: {exc.kind}"
            except NotifierError as exc:
                problem = str(exc)
            await backoff.failed(problem)

    async def aclose(self, *, when_idle: bool = False) -> None:
        """Close the connection; *when_idle*: once a send in flight has its answer."""
        connection, self._connection = self._connection, None
        if connection is not None:
            if when_idle:
                await connection.close_when_idle(self._timeout)
            else:
                await connection.close()

    async def _connected(self) -> _Connection:
        async with self._opening:
            if self._connection is None or not self._connection.is_open:
                try:
                    reader, writer = await open_private_socket(self.path, limit=MAX_LINE_BYTES)
                except SocketNotPrivate as exc:
                    log.warning("signal_socket_refused", why=str(exc))
                    raise NotifierError(f"signal-cli's socket refused: {exc}") from None
                except (FileNotFoundError, ConnectionRefusedError):
                    raise ApiUnreachable(SERVICE, f"nothing listens at {self.path}") from None
                except OSError as exc:
                    raise ApiUnreachable(SERVICE, type(exc).__name__) from None
                self._connection = _Connection(reader, writer, self._admit)
            return self._connection

    async def _subscribed(self) -> _Connection:
        """The connection, subscribed once (a notifier taking it over after a reload
        reads on: subscribed again, each message would come once more)."""
        connection = await self._connected()
        if connection.subscribed:
            return connection
        try:
            await connection.call("subscribeReceive", {"account": self.number}, self._timeout)
        except SignalCliError as exc:
            if exc.rpc_code != METHOD_NOT_FOUND:
                raise  # an older signal-cli pushes messages to every connection anyway
        connection.subscribed = True
        return connection

    def _admit(self, params: Any) -> tuple[Any, bool] | None:
        """*params* as an item to read and whether it is the person's; None for none,
        another account's, or one seen already."""
        item = (
            params.get("result")
            if isinstance(params, dict) and "subscription" in params
            else params
        )
        if item is None:
            return None
        if not isinstance(item, dict):
            return item, False  # malformed: the envelope reader logs and skips it
        if for_another_account(item, self.number):
            return None
        person = self._person.wrote(item)
        envelope = item.get("envelope")
        if isinstance(envelope, dict):
            key = tuple(
                envelope.get(k) for k in ("sourceUuid", "sourceNumber", "sourceDevice", "timestamp")
            )
            if all(isinstance(k, str | int | None) for k in key):
                seen = self._seen[person]
                if key in seen:
                    return None
                seen[key] = None
                while len(seen) > REMEMBERED_ENVELOPES:
                    seen.popitem(last=False)
        return item, person


async def _skip_line(reader: asyncio.StreamReader) -> bool:
    """Drops a line over the limit up to its end (True), or up to
    :data:`MAX_SKIPPED_BYTES` (False: the connection is to end). Anyone can write to the
    number, and an envelope is one line, so one stranger's message must not end the
    connection (and lose what signal-cli wrote after it, the person's reply perhaps). The
    line is dropped whole: no part of it is read as a line of its own."""
    skipped = 0
    while skipped <= MAX_SKIPPED_BYTES:
        try:
            await reader.readuntil(b"\n")
            return True
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
            skipped += exc.consumed
    return False


def _timestamp(answer: Any) -> int:
    if not isinstance(answer, dict):
        raise NotifierError("signal-cli: send answered without a timestamp")
    results = answer.get("results")
    if isinstance(results, list):
        failed = [
            r.get("type") for r in results if isinstance(r, dict) and r.get("type") != "SUCCESS"
        ]
        if failed:
            reasons = untrusted_line(", ".join(str(f) for f in failed), 200)
            raise NotifierError(f"signal: the message was not delivered: {reasons}")
    timestamp = answer.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise NotifierError("signal-cli: send answered without a timestamp")
    return timestamp


def _error(error: Any) -> SignalCliError:
    code = error.get("code") if isinstance(error, dict) else None
    detail = error.get("message") if isinstance(error, dict) else None
    text = untrusted_line(str(detail or "no detail"), 200)
    return SignalCliError(f"signal-cli refused: {text}", rpc_code=code)
