"""A stdio MCP server, a child of the connector host, its pipes read and written on the
event loop: the transport :class:`~airlock_mcp_proxy.upstream.Upstream` gives the MCP
client in place of the SDK's ``stdio_client`` (mcp 2.3), which bounds neither of these:

- Stdout is read by core's ``PipeLines``, in time linear in a line's length. The SDK
  joined each chunk to the line so far: a server writing 80 MB without a newline cost
  the host ~55 s of CPU (40 MB: 11 s). A line over :data:`MAX_LINE` ends the session
  (the call fails saying so, and the server is stopped): what follows it cannot be
  trusted to start a message, and a server that writes one is broken or hostile. So
  does a message of too many JSON objects (:mod:`.messages`).
- A message to the server goes into the pipe's buffer at once, so the time it takes
  to reach a server is part of the call's timeout, whose clock the SDK starts when the
  transport has taken the message. The SDK's writer took it before writing it: with a
  server no longer reading stdin, the courtesy cancel after a call's timeout waited 5 s
  behind the unread arguments, and a call sent meanwhile waited with no clock running.

Otherwise it does what ``stdio_client`` does: the same environment (the SDK's safe
defaults under the service's ``env``), the server in a session and process group of its
own, a line that is not an MCP message dropped (logged without its words), and the same
stop: at most 0.5 s for what was written to reach the server, stdin closed, 2 s to
exit, then SIGTERM to its process group and, 2 s later, SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import IO, Any, cast

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream
from mcp.client.stdio import (
    FORCE_KILL_TIMEOUT,
    PROCESS_TERMINATION_TIMEOUT,
    get_default_environment,
)
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCMessage

from airlock.plugin import LineTooLong, PipeLines, get_logger
from airlock_mcp_proxy.messages import MAX_OBJECTS, TooManyObjects, read_message

log = get_logger("airlock_mcp_proxy")
MAX_LINE = 16 * 1024 * 1024
"""The longest line read from a server. One answer crosses from the connector host to
the core in at most 16 MiB, so a longer text answer could not be delivered anyway; an
image or a file, passed on as its size only, still arrives whole in base64, so one of
over ~12 MB is refused too. The host holds at most about twice this of a server's
stdout."""
STDIN_BACKLOG = 4 * 1024 * 1024
"""The most a server may leave unread on its stdin (a request is at most 2 MiB): past
it, the server has stopped reading, and the session ends. The SDK answers a server's
pings by itself, each answer echoing the ping's id: a server that sent pings with 1 MiB
ids and never read the answers grew the host by ~50 MB a second, no call running."""
FLUSH_TIMEOUT = 0.5
"""Seconds what was written may take to reach a server being stopped (as the SDK)."""
REAP_TIMEOUT = 2.0
"""Seconds for a killed server's exit to be seen; only an unkillable one runs it out."""

Message = SessionMessage | Exception


class _Flushed(asyncio.BaseProtocol):
    """The flow control of the server's stdin: :attr:`done` is set while the pipe's
    buffer is within the transport's limits (when stopping, 0: empty); a pipe that
    broke with messages still in it calls :attr:`on_broken` (as the SDK, the session
    ends: they will never be answered)."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.done.set()
        self.on_broken: Callable[[], object] = lambda: None

    def pause_writing(self) -> None:
        self.done.clear()

    def resume_writing(self) -> None:
        self.done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()
        if exc is not None:
            self.on_broken()


class _Stdin:
    """What the session writes to (the SDK's ``WriteStream``): each message is put in
    the pipe's buffer at once, never awaited."""

    def __init__(self, pipe: asyncio.WriteTransport, on_backlog: Callable[[], object]) -> None:
        self._pipe = pipe
        self._closed = False
        self._on_backlog = on_backlog

    async def send(self, item: SessionMessage, /) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise anyio.ClosedResourceError
        if self._pipe.is_closing():
            raise anyio.BrokenResourceError  # the server closed its stdin or exited
        if self._pipe.get_write_buffer_size() > STDIN_BACKLOG:
            self._on_backlog()
            raise anyio.BrokenResourceError
        text = item.message.model_dump_json(by_alias=True, exclude_unset=True)
        self._pipe.write(text.encode() + b"\n")

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> _Stdin:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class StdioServer:
    """One stdio server: :meth:`streams` starts it and gives the MCP client its read and
    write streams (a transport, for ``mcp.Client``); leaving them stops it."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: str | None,
        stderr: IO[str],
        service: str,
    ) -> None:
        self._argv = argv
        self._env = env
        self._cwd = cwd
        self._stderr = stderr
        self._service = service
        self.ended: str | None = None
        """Why the session was ended here, not by the server (a line over the limit)."""

    @asynccontextmanager
    async def streams(self) -> AsyncIterator[tuple[Any, _Stdin]]:
        loop = asyncio.get_running_loop()
        child_in, stdin_fd = os.pipe()
        stdout_fd, child_out = os.pipe()
        try:
            with contextlib.ExitStack() as undo:
                stdin_file = undo.enter_context(os.fdopen(stdin_fd, "wb", 0))
                lines = await PipeLines.open(stdout_fd, MAX_LINE)
                undo.callback(lines.close)
                pipe, flushed = await loop.connect_write_pipe(_Flushed, stdin_file)
                undo.callback(pipe.abort)
                process = await asyncio.create_subprocess_exec(
                    *self._argv,
                    stdin=child_in,
                    stdout=child_out,
                    stderr=self._stderr,
                    env=get_default_environment() | self._env,
                    cwd=self._cwd,
                    start_new_session=True,
                )
                undo.pop_all()  # from here on, the stop below closes them
        finally:
            os.close(child_in)
            os.close(child_out)
        to_session, from_server = anyio.create_memory_object_stream[Message](0)
        reading, read = anyio.CancelScope(), anyio.Event()
        flushed.on_broken = reading.cancel

        def deaf() -> None:
            if self.ended is None:
                self.ended = (
                    f"left over {STDIN_BACKLOG >> 20} MiB unread on its stdin and was stopped"
                )
                log.error("mcp_server_not_reading", service=self._service, limit=STDIN_BACKLOG)
            reading.cancel()  # the session ends; the stop below stops the server

        async def read_stdout() -> None:
            try:
                with reading:
                    await self._read(lines, to_session)
            finally:
                to_session.close()  # the session sees the end
                read.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read_stdout)
            try:
                yield from_server, _Stdin(pipe, deaf)
            finally:
                # Every wait in the stop is bounded: it finishes even when cancelled.
                with anyio.CancelScope(shield=True):
                    reading.cancel()
                    await read.wait()
                    await from_server.aclose()
                    await self._stop(process, pipe, flushed, lines)

    async def _read(self, lines: PipeLines, session: MemoryObjectSendStream[Message]) -> None:
        """Each MCP message on the server's stdout, to the session."""
        try:
            while line := await lines.readline():
                message = self._message(line)
                if message is not None:
                    await session.send(SessionMessage(message))
        except LineTooLong:
            self.ended = f"wrote a line over {MAX_LINE >> 20} MiB and was stopped"
            log.error("mcp_server_line_too_long", service=self._service, limit=MAX_LINE)
        except TooManyObjects as exc:
            self.ended = f"wrote {exc} and was stopped"
            log.error("mcp_server_message_too_large", service=self._service, limit=MAX_OBJECTS)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass  # the session is gone, or the pipe broke: either way it ends here

    def _message(self, line: bytes) -> JSONRPCMessage | None:
        if not line.strip():
            return None
        try:
            return read_message(line)
        except TooManyObjects:
            raise
        except ValueError:
            # A debug print, a broken message: its words may hold a secret.
            log.warning("mcp_server_stdout_dropped", service=self._service, bytes=len(line))
            return None

    async def _stop(
        self,
        process: asyncio.subprocess.Process,
        pipe: asyncio.WriteTransport,
        flushed: _Flushed,
        lines: PipeLines,
    ) -> None:
        """As the SDK stops a server, with what it writes meanwhile read (to a bound)."""
        async with anyio.create_task_group() as tasks:
            # A server blocked writing to a full stdout could not see its stdin close.
            tasks.start_soon(lines.discard, MAX_LINE)
            pipe.set_write_buffer_limits(high=0)
            with anyio.move_on_after(FLUSH_TIMEOUT):
                await flushed.done.wait()
            if not pipe.is_closing():  # (aborting a closed pipe raises)
                pipe.abort()  # stdin closed; what the server never read is dropped
            if not await _exited(process, PROCESS_TERMINATION_TIMEOUT):
                # SIGTERM to its process group, SIGKILL after the grace (the SDK's own).
                await terminate_posix_process_tree(cast(Any, process), FORCE_KILL_TIMEOUT)
                if not await _exited(process, REAP_TIMEOUT):
                    log.warning("mcp_server_not_stopped", service=self._service, pid=process.pid)
            # What it started and left behind in its group (holding its environment, the
            # service's secrets among it) ends with it: the group's id stays reserved
            # while any of them lives. One that left the group (setsid) is out of reach.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            lines.close()


async def _exited(process: asyncio.subprocess.Process, grace: float) -> bool:
    """Whether the server exited within *grace* seconds (the pipes are not the
    subprocess transport's, so a child of its own holding them does not delay this)."""
    with anyio.move_on_after(grace):
        await process.wait()
    return process.returncode is not None
