"""The core's end of the channel to the connector host: requests, answers, restarts.

One connection carries every request at once (each with its own id). When the host goes
away — killed, crashed, stuck past the watchdog — every call in flight fails with a
clear 502, whoever started the host starts another (the daemon itself, for a child
host), and the next request connects to the new one and configures it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from airlock.common.logs import get_logger
from airlock.common.processes import wait_or_kill
from airlock.connector_host.protocol import (
    MAX_ANSWER_BYTES,
    MAX_REQUEST_BYTES,
    ChannelBroken,
    FrameReader,
    Outbox,
    decode_error,
    frame,
)
from airlock.connector_host.waiters import MAX_FRAMES_WAITING, Deadlines, StreamNotRead, Waiter
from airlock.errors import ConnectorError, ConnectorTimeout, PayloadTooLarge, ServiceAnswerLost

__all__ = ["ChildHost", "HostLauncher", "HostLink", "SocketHost"]

log = get_logger("airlock.connector_host")

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
CONNECT_WAIT = 10.0
"""How long the core waits for a host that is starting (a socket host's supervisor)."""
PROBE_TIMEOUT = 3.0
"""A host that does not answer a ping within this after a timed-out call is restarted."""
MIN_RESTART_GAP = 1.0
STOP_GRACE = 5.0


_GREETING: contextvars.ContextVar[bool] = contextvars.ContextVar("greeting", default=False)
"""Set while :attr:`HostLink.hello` runs: its requests go out before others may."""


class HostLauncher(Protocol):
    """Starts (or finds) a connector host and connects to it."""

    async def connect(self) -> Streams: ...

    async def restart(self) -> None:
        """Make sure the next :meth:`connect` reaches a fresh host (kill a stuck one)."""

    async def close(self) -> None: ...


class ChildHost:
    """The host as the daemon's child process (personal mode): one socket pair each."""

    def __init__(
        self,
        data_dir: Path,
        *,
        plugins: Sequence[str] = (),
        entry_points: bool = True,
        hide: Sequence[Path] = (),
    ) -> None:
        self.data_dir = data_dir
        self.hide = list(hide)
        """Paths the programs the host starts may not reach (besides its vault)."""
        self.plugins = list(plugins)
        self.entry_points = entry_points
        self.process: asyncio.subprocess.Process | None = None
        self._started = 0.0

    async def connect(self) -> Streams:
        await self.restart()  # an old child that still runs is stopped first
        wait = MIN_RESTART_GAP - (time.monotonic() - self._started)
        if wait > 0:  # a host that dies at start must not be started in a busy loop
            await asyncio.sleep(wait)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # -P: ``-m`` would put the daemon's working directory (``/tmp``, a shared folder
        # another user can write) first on the import path, ahead of airlock itself.
        argv = [sys.executable, "-P", "-m", "airlock.connector_host"]
        argv += ["--fd", str(theirs.fileno())]
        argv += ["--data-dir", str(self.data_dir)]
        for path in self.hide:
            argv += ["--hide", str(path)]
        for plugin in self.plugins:
            argv += ["--plugin", plugin]
        if not self.entry_points:
            argv.append("--no-entry-points")
        env = dict(os.environ)
        if self.plugins:  # plugins registered in code are imported from the same path
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self._started = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                *argv,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
            )
        finally:
            theirs.close()
        log.info("connector_host_started", pid=self.process.pid)
        return await asyncio.open_unix_connection(sock=ours)

    async def restart(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def close(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        await wait_or_kill(process, STOP_GRACE)


class SocketHost:
    """A host that runs as its own user and serves a socket (isolated mode); its
    supervisor (systemd, or ``airlock service start``) restarts it."""

    def __init__(self, path: Path, *, wait: float = CONNECT_WAIT) -> None:
        self.path = path
        self.wait = wait

    async def connect(self) -> Streams:
        deadline = time.monotonic() + self.wait
        while True:
            try:
                return await asyncio.open_unix_connection(str(self.path))
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() >= deadline:
                    raise ConnectorError(
                        f"the connector host is not answering at {self.path}",
                        hint="`airlock service status` shows it; `airlock service start` starts it",
                    ) from None
                await asyncio.sleep(0.2)
            except PermissionError:
                raise ConnectorError(
                    f"this daemon may not reach the connector host at {self.path}",
                    hint="reinstall with `airlock service install --isolated`",
                ) from None

    async def restart(self) -> None:
        """Nothing to do: the host's own supervisor restarts it."""

    async def close(self) -> None:
        """The host keeps running; only the connection closes."""


class HostLink:
    """Requests to the connector host over one multiplexed connection."""

    def __init__(
        self,
        launcher: HostLauncher,
        *,
        timeout: float,
        hello: Callable[[HostLink], Awaitable[None]] | None = None,
        on_gone: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.launcher = launcher
        self.timeout = timeout
        self.hello = hello
        """Sent first on every new connection (the services, the unlock)."""
        self.on_gone = on_gone
        self._ids = itertools.count(1)
        self._waiting: dict[int, Waiter] = {}
        self._outbox: Outbox | None = None
        """The connection's outbox (and through it, its writer); None when not connected."""
        self._reading: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()
        self._greeted = False
        self._background: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines = Deadlines(self._waiting)
        self.restarts = 0

    @property
    def connected(self) -> bool:
        return self._open_outbox() is not None

    def _open_outbox(self) -> Outbox | None:
        outbox = self._outbox
        return outbox if outbox is not None and not outbox.writer.is_closing() else None

    async def _outbox_ready(self) -> Outbox:
        """The connection's outbox, once the host on it has been greeted (connecting if
        needed)."""
        outbox = self._open_outbox()
        if outbox is not None and (self._greeted or _GREETING.get()):
            return outbox
        async with self._connecting:
            if self._open_outbox() is None:
                self._greeted = False
                self._loop = asyncio.get_running_loop()
                reader, writer = await self.launcher.connect()
                self._outbox = Outbox(writer)
                self._reading = asyncio.create_task(self._read(reader, writer))
                if self.hello is not None:
                    token = _GREETING.set(True)
                    try:
                        await self.hello(self)
                    except BaseException:
                        writer.close()
                        self._outbox = None
                        raise
                    finally:
                        _GREETING.reset(token)
                self._greeted = True
            assert self._outbox is not None
            return self._outbox

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reason = "the connector host closed the channel"
        frames = FrameReader(reader, MAX_ANSWER_BYTES)
        try:
            while True:
                message = await frames.next()
                rid = message.get("id")
                waiter = self._waiting.get(rid) if type(rid) is int else None  # not true
                if waiter is not None:
                    waiter.put(message)
                    if waiter.frames is not None:
                        # A stream's frames often arrive together (the host writes a
                        # turn's chunks in one go, or the loop was busy): its consumer
                        # relays this one before the next is decoded, not after them all.
                        await asyncio.sleep(0)
        except ChannelBroken as exc:
            reason = str(exc)
        except asyncio.CancelledError:
            reason = "the daemon is stopping"
            raise
        finally:
            writer.close()
            if self._outbox is not None and self._outbox.writer is writer:
                self._outbox = None
            for waiter in list(self._waiting.values()):
                waiter.put(None)
            if reason != "the daemon is stopping":
                self.restarts += 1
                log.warning("connector_host_gone", reason=reason)
                if self.on_gone is not None:
                    self._spawn(self.on_gone(reason))

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send(
        self,
        kind: str,
        fields: dict[str, Any],
        streamed: bool,
        *,
        at_once: bool = False,
        within: float | None = None,
    ) -> tuple[int, Waiter]:
        outbox = await self._outbox_ready()
        rid = next(self._ids)
        try:
            data = frame({"id": rid, "kind": kind, **fields}, MAX_REQUEST_BYTES)
        except ValueError:
            raise PayloadTooLarge("the request is over the connector host's limit") from None
        loop = self._loop
        assert loop is not None  # set when it connected
        if within is None:
            waiter = Waiter(loop, streamed)
        else:
            due = loop.time() + within
            waiter = Waiter(loop, streamed, due)
            self._deadlines.watch(loop, due)
        self._waiting[rid] = waiter
        outbox.put(data)
        if at_once:
            outbox.flush()
        return rid, waiter

    def _cancel(self, rid: int) -> None:
        self._waiting.pop(rid, None)
        outbox = self._open_outbox()
        if outbox is not None:
            outbox.put(frame({"kind": "cancel", "target": rid}, MAX_REQUEST_BYTES))

    async def request(
        self, kind: str, *, within: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """The host's answer to one request; its error raised as the AirlockError it is."""
        rid, waiter = await self._send(kind, fields, streamed=False, within=within or self.timeout)
        try:
            message = await waiter.future
        except TimeoutError:
            self._cancel(rid)
            self._spawn(self._probe())
            raise ConnectorTimeout(
                f"the operation took longer than {within or self.timeout:g}s and was stopped",
                hint="try again, or ask for less",
            ) from None
        except asyncio.CancelledError:
            self._cancel(rid)
            raise
        finally:
            self._waiting.pop(rid, None)
        return _answer(message)

    async def stream(
        self, kind: str, *, at_once: bool = False, **fields: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The frames of a request answered with several (``kind: "priced"``) as they come,
        up to its ``ok`` (or its error, raised).

        *at_once*: the request is written now, not at the end of this turn with the
        others (an agent waits for a streamed answer's first chunk, and the turn's other
        work, such as formatting the call's audit record, need not go first)."""
        rid, waiter = await self._send(kind, fields, streamed=True, at_once=at_once)
        finished = False
        try:
            while True:
                try:
                    message = await waiter.next_frame(self.timeout)
                except TimeoutError:
                    self._spawn(self._probe())
                    raise ConnectorTimeout(
                        f"the service sent nothing for {self.timeout:g}s; the call was stopped"
                    ) from None
                except StreamNotRead:
                    raise ConnectorError(
                        f"the answer was not read: {MAX_FRAMES_WAITING} of its chunks "
                        "waited, so the call was stopped",
                        hint="read a streamed answer as it comes",
                    ) from None
                if message is None or "ok" in message or "error" in message:
                    finished = True
                    _answer(message)
                    return
                yield message
        finally:
            waiter.close()
            if not finished:
                self._cancel(rid)
            self._waiting.pop(rid, None)

    async def _probe(self) -> None:
        """After a timeout: a host that cannot even answer a ping is stuck; restart it."""
        try:
            await self.request("ping", within=PROBE_TIMEOUT)
        except ConnectorTimeout:
            log.warning("connector_host_stuck", action="restart")
            await self.launcher.restart()
        except Exception:
            return

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(BaseException):
                await self._reading
        self._deadlines.close()
        if self._outbox is not None:
            self._outbox.writer.close()
            self._outbox = None
        await self.launcher.close()


def _answer(message: dict[str, Any] | None) -> dict[str, Any]:
    if message is None:
        raise ServiceAnswerLost(
            "the connector host stopped while running this call; it is being restarted",
            hint="try again",
        )
    if "error" in message:
        raise decode_error(message["error"])
    ok = message.get("ok")
    if not isinstance(ok, dict):
        raise ConnectorError("the connector host sent a malformed answer")
    return ok
