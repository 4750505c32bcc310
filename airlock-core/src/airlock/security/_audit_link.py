"""The daemon's side of its audit writer process (:mod:`._audit_writer`).

The records an event loop's turn produces go in one write to the process; each waits on
a future for its answer line, in order. The process is started at the first record and
again after it stops: records waiting when it stopped fail with ``AuditError`` (they may
or may not be on disk, like a crash's), and for ``RESTART_GAP`` seconds after a start
every record fails at once rather than start a process in a loop. Fail closed: nothing
waits for a record that cannot be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import cast

from airlock.common.processes import wait_or_kill
from airlock.errors import AuditError
from airlock.security._audit_file import AuditRecord, audit_error
from airlock.security._audit_writer import READY, whole_lines

__all__ = ["RESTART_GAP", "WriterLink"]

RESTART_GAP = 1.0
"""Seconds between two starts of the writer process."""
STOP_WAIT = 10.0
"""Seconds the writer has to write what it holds once the daemon's side closes."""
ANSWER_WAIT = 30.0
"""Seconds without an answer while records wait (or without ``ready`` at a start) after
which the writer counts as stuck (stopped, or its disk hung): the channel ends, the
waiting records fail, the writer is killed, and the next record starts another."""


class WriterLink:
    """Records to an audit writer process, started when needed.

    *now* gives the time of the records written in a turn (the log's clock).
    """

    def __init__(
        self,
        audit_dir: Path,
        key: bytes,
        *,
        rotate_bytes: int,
        now: Callable[[], str],
        restart_gap: float = RESTART_GAP,
        answer_wait: float = ANSWER_WAIT,
    ) -> None:
        self.audit_dir = audit_dir
        self.restart_gap = restart_gap
        self.answer_wait = answer_wait
        self._key = key
        self._rotate_bytes = rotate_bytes
        self.now = now
        self.last_seq = 0
        """The seq of the last record the process wrote (0 before the first)."""
        self.process: asyncio.subprocess.Process | None = None
        self._channel: _Channel | None = None
        self._starting = asyncio.Lock()
        self._started = -restart_gap
        self.closed = False

    async def append(self, event: str, fields_json: str) -> AuditRecord:
        channel = self._channel
        if self.closed:
            raise audit_error("the audit log is closed")
        if channel is None or channel.lost:
            channel = await self._start()
        return await channel.send(event, fields_json)

    async def _start(self) -> _Channel:
        async with self._starting:
            channel = self._channel
            if channel is not None and not channel.lost:
                return channel  # another record started it meanwhile
            self._reap()
            self._check_open()
            if time.monotonic() - self._started < self.restart_gap:
                raise audit_error("the audit writer stopped; it starts again in a moment")
            self._started = time.monotonic()
            channel = self._channel = await self._spawn()
            # Records sent from now on wait in the channel until the key has gone out.
            try:
                await asyncio.shield(channel.ready)
            finally:
                if self.closed:  # closed while it started: it ends with the rest
                    channel.close()
            self._check_open()
            return channel

    async def _spawn(self) -> _Channel:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-P", "-m", "airlock.security._audit_writer"),
                *("--fd", str(theirs.fileno()), "--dir", str(self.audit_dir)),
                *("--rotate-bytes", str(self._rotate_bytes)),
                # Records it must find on disk: a cut while no writer ran is refused.
                *("--written-up-to", str(self.last_seq)),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                # A session of its own: where the kernel shares the CPU out by session
                # (autogroup, on by default outside a service's cgroup), a writer in the
                # daemon's waited for a CPU behind the busy event loop and the connector
                # host each time it woke, ~25 us a record, and every call waits for its
                # batch. Nor does the terminal's Ctrl-C or Ctrl-Z reach it: it ends when
                # the daemon's side closes, and the kernel kills it if the daemon dies
                # (``end_with_parent``: a kill of the daemon's group misses it now).
                start_new_session=True,
            )
            ours.setblocking(False)
            # The loop's transport gets a copy: ours ends the stream at close() at once,
            # whether or not the loop runs again (the writer then ends: see close()).
            make = functools.partial(_Channel, self, ours, self._key)
            _, channel = await asyncio.get_running_loop().create_connection(make, sock=ours.dup())
        except OSError as exc:
            ours.close()
            self._reap()
            raise audit_error(f"the audit writer did not start: {exc.strerror}") from None
        except BaseException:
            ours.close()
            self._reap()
            raise
        finally:
            theirs.close()
        if self.closed:
            channel.close()
        return channel

    def _check_open(self) -> None:
        if self.closed:
            self._reap()
            raise audit_error("the audit log is closed")

    def close(self) -> None:
        """End the channel: the process writes what it has, then ends (the event loop
        collects it; :meth:`wait_closed` waits for that). Records from then on fail."""
        self.closed = True
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    async def wait_closed(self) -> None:
        """After :meth:`close`: the process's end (killed after ``STOP_WAIT`` seconds)."""
        process, self.process = self.process, None
        if process is not None:
            await wait_or_kill(process, STOP_WAIT)

    def stuck(self, channel: _Channel) -> None:
        """*channel*'s writer stopped answering: ended now, not at the next start (a stop
        would wait for it in vain)."""
        if channel is self._channel:
            self._reap()

    def _reap(self) -> None:
        """End a process whose channel broke, if it still runs."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


class _Channel(asyncio.Protocol):
    """One writer process's socket: records out, answer lines back, in order."""

    def __init__(self, link: WriterLink, sock: socket.socket, key: bytes) -> None:
        self._link = link
        self._sock = sock
        self._key: bytes | None = key
        """Sent (and forgotten here) once the writer says it refuses ptrace: never
        waiting in the socket for a process another of its user's could still read."""
        self._transport: asyncio.Transport | None = None
        self._out: list[str] = []
        self._waiting: deque[tuple[asyncio.Future[AuditRecord], str]] = deque()
        self._buffer = bytearray()
        self.lost = False
        self._loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = self._loop.create_future()
        """Done when the writer said it may be sent the key (and was sent it)."""
        self.ready.add_done_callback(_seen)
        self._answers = 0
        # First the start's check (None: only whether it said ready), then, while records
        # wait, whether one was answered since the check before.
        self._watch: asyncio.TimerHandle | None = self._loop.call_later(
            link.answer_wait, self._check, None
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def send(self, event: str, fields_json: str) -> asyncio.Future[AuditRecord]:
        future: asyncio.Future[AuditRecord] = self._loop.create_future()
        if self.lost:  # it broke since the record's caller looked: nothing would answer
            future.set_exception(audit_error("the audit writer stopped"))
            return future
        if not self._out and self.ready.done():
            self._loop.call_soon(self._flush)
        if self._watch is None:
            self._watch = self._loop.call_later(self._link.answer_wait, self._check, self._answers)
        self._out.append(f"R{event}\t{fields_json}\n")
        self._waiting.append((future, event))
        return future

    def _flush(self) -> None:
        lines, self._out = self._out, []
        if self._transport is None or self.lost:
            return  # their records failed with the channel
        self._transport.write(f"T{self._link.now()}\n{''.join(lines)}".encode("ascii"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for line in whole_lines(self._buffer):
            if not self.ready.done():
                if line + b"\n" != READY or self._transport is None or self._key is None:
                    self.close()
                    return
                self._transport.write(self._key)
                self._key = None
                self.ready.set_result(None)
                if self._out:  # records sent while it started
                    self._flush()
                continue
            if not self._waiting or not self._answer(line):
                self.close()  # answers nobody asked for, or not answers: a broken writer
                return

    def _check(self, answers_then: int | None) -> None:
        """The stuck-writer check (see ``ANSWER_WAIT``): ready by now and, if records wait
        and *answers_then* counts the answers at the check before, one answered since;
        checked again while records wait."""
        self._watch = None
        if self.lost:
            return
        if self.ready.done() and (
            answers_then is None or not self._waiting or self._answers != answers_then
        ):
            if self._waiting:
                wait = self._link.answer_wait
                self._watch = self._loop.call_later(wait, self._check, self._answers)
            return
        self.close(f"the audit writer did not answer for {self._link.answer_wait:g}s")
        self._link.stuck(self)

    def _answer(self, line: bytes) -> bool:
        self._answers += 1
        future, event = self._waiting.popleft()
        if line.startswith(b"!"):
            outcome: AuditRecord | AuditError = audit_error(line[1:].decode("ascii", "replace"))
        else:
            try:
                seq, ts, mac = line.decode("ascii").split(" ")
                outcome = AuditRecord(int(seq), ts, event, mac)
            except ValueError:
                self._waiting.appendleft((future, event))
                return False
            self._link.last_seq = max(self._link.last_seq, outcome.seq)
        if not future.done():
            if isinstance(outcome, AuditError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        return True

    def close(self, reason: str = "the audit writer stopped") -> None:
        self._lost(reason)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._sock.close()
        self._lost("the audit writer stopped")

    def _lost(self, reason: str) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self.lost = True
        self._key = None
        if not self.ready.done():
            self.ready.set_exception(audit_error(reason))
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(audit_error(reason))


def _seen(future: asyncio.Future[None]) -> None:
    """A start nobody waits for any more (cancelled) must not log its failure as lost."""
    if not future.cancelled():
        future.exception()
