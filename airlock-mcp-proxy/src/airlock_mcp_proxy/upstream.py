"""One running MCP server: a child process of the daemon (stdio) or an HTTP endpoint.

The MCP client lives in a task of its own, because the SDK's client and transports must
be entered and left by the same task while Airlock opens a connector in one request and
closes it from housekeeping. A child speaks through :class:`StdioServer` (its stdout read
in linear time, a line bounded, its stdin never awaited); its stderr goes to the daemon
log line by line, with the secrets from the vault masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from airlock.plugin import confined_command, get_logger, withhold
from airlock_mcp_proxy import sdk_log
from airlock_mcp_proxy.stdio import MAX_LINE, StdioServer

log = get_logger("airlock_mcp_proxy")
START_TIMEOUT = 60.0
"""Seconds a server may always take to start (``npx`` may fetch it first), whatever the
service's ``timeout`` for tool calls."""
LINE_LIMIT = 2000
"""Longer stderr lines are cut: a server dumping a file to stderr must not flood the log."""


def _lines(stream: IO[str], keep: int) -> Iterator[str]:
    """Each line of *stream*, its first *keep* characters only: the rest of a longer line
    is read and dropped, so a line that never ends is never held whole."""
    while line := stream.readline(keep):
        rest = line
        while rest and not rest.endswith("\n"):
            rest = stream.readline(keep)
        yield line.rstrip("\n")


LINES_A_MINUTE = 300
"""Stderr lines of one server logged in a minute; the rest are counted, not logged. A
server writing 2,000-character lines as fast as it could added ~40 MiB a second to the
daemon log (not rotated under the supervisor): a full disk stops every record."""


def _relay_stderr(
    stream: IO[str],
    service: str,
    secrets: list[str],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Each line the server writes to stderr, into the daemon log (a thread: blocking
    reads), at most LINES_A_MINUTE a minute."""
    # The longest secret past the cut is read too, so a secret at the cut is masked whole.
    keep = LINE_LIMIT + max((len(s) for s in secrets), default=0)
    minute, logged, dropped = clock(), 0, 0
    with stream:
        for line in _lines(stream, keep):
            if clock() - minute >= 60:
                if dropped:
                    log.warning("mcp_server_stderr_dropped", service=service, lines=dropped)
                minute, logged, dropped = clock(), 0, 0
            if logged >= LINES_A_MINUTE:
                dropped += 1
                continue
            text = withhold(line, secrets)[:LINE_LIMIT]
            if text.strip():
                logged += 1
                log.info("mcp_server_stderr", service=service, line=text)
    if dropped:
        log.warning("mcp_server_stderr_dropped", service=service, lines=dropped)


class Upstream:
    """A connected MCP client session to one server, until :meth:`stop`."""

    def __init__(
        self,
        *,
        service: str,
        command: list[str] | None,
        url: str | None,
        env: dict[str, str],
        cwd: str | None,
        timeout: float,
        secrets: list[str],
    ) -> None:
        self.service = service
        self._command = command
        self._url = url
        self._env = env
        self._cwd = cwd
        self._timeout = timeout
        self.secrets = secrets
        self._client: Any = None
        self._server: StdioServer | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        """Why the session ended on its own (the server exited, the connection broke)."""

    @property
    def client(self) -> Any:
        """The connected ``mcp.Client`` (None once the session ended)."""
        return self._client

    @property
    def ended(self) -> str | None:
        """Why the session with a stdio server was ended on this side (it wrote a line
        over the limit), said after "the MCP server"; None otherwise."""
        return self._server.ended if self._server is not None else None

    @property
    def running(self) -> bool:
        return self._client is not None and self._task is not None and not self._task.done()

    async def start(self) -> Any:
        """Start the server and complete the MCP handshake; the connected ``mcp.Client``."""
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        sdk_log.hide(self, self.secrets)
        self._task = asyncio.create_task(self._run(ready), name=f"mcp-upstream-{self.service}")
        try:
            return await asyncio.wait_for(asyncio.shield(ready), max(self._timeout, START_TIMEOUT))
        except BaseException:
            await self.stop()
            raise

    async def _run(self, ready: asyncio.Future[Any]) -> None:
        from mcp import Client

        errlog: IO[str] | None = None
        http = None
        try:
            if self._command is not None:
                transport, errlog = self._stdio()
                client = Client(transport, read_timeout_seconds=self._timeout)
            else:
                assert self._url is not None
                from mcp.client.streamable_http import streamable_http_client

                from airlock_mcp_proxy.http_answers import bounded_client

                http = bounded_client(MAX_LINE)  # the library's own reads answers unbounded
                transport = streamable_http_client(self._url, http_client=http)
                client = Client(transport, read_timeout_seconds=self._timeout)
            async with client:
                if errlog is not None:
                    # The child holds its own copy: the relay sees EOF when it exits.
                    errlog.close()
                    errlog = None
                self._client = client
                ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            elif not self._stop.is_set():
                self.failure = exc
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None
            if errlog is not None:
                errlog.close()
            if http is not None:
                await http.aclose()

    def _stdio(self) -> tuple[Any, IO[str]]:
        assert self._command is not None
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
        errlog = os.fdopen(write_fd, "w", encoding="utf-8")
        threading.Thread(
            target=_relay_stderr,
            args=(reader, self.service, self.secrets),
            name=f"mcp-stderr-{self.service}",
            daemon=True,
        ).start()
        # It runs as the connector host's user: kept from the vault and Airlock's files.
        argv = confined_command(self._command)
        self._server = StdioServer(
            argv, env=self._env, cwd=self._cwd, stderr=errlog, service=self.service
        )
        return self._server.streams(), errlog

    async def stop(self) -> None:
        """End the session and the server (stdin closed, then SIGTERM, then SIGKILL).
        Idempotent."""
        self._stop.set()
        task, self._task = self._task, None
        try:
            if task is not None:
                await self._end(task)
        finally:
            sdk_log.forget(self)

    @staticmethod
    async def _end(task: asyncio.Task[None]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except BaseException:  # noqa: S110 - its failure was reported where it happened
            pass
