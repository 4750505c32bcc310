"""The daemon's audit writer process: the same chain, the key kept out of sight, and
every record waiting on it failing closed when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from airlock.common.clock import FakeClock
from airlock.errors import AuditError
from airlock.security._audit_fields import fields_json
from airlock.security._audit_file import AuditFile
from airlock.security._audit_format import format_ts
from airlock.security._audit_link import ANSWER_WAIT, RESTART_GAP, WriterLink
from airlock.security._audit_writer import READY, Broken, serve
from airlock.security.audit import AuditLog, verify

KEY = bytes(range(32))
PRINTABLE_KEY = bytes(range(65, 97))
"""No NUL in it: /proc's cmdline and environ separate their strings with NULs."""


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())


async def until(condition: Callable[[], bool]) -> None:
    """Wait until *condition* holds: the link's own state, which no event says, looked
    at each turn of the loop."""
    while not condition():  # noqa: ASYNC110 - no event to wait on
        await asyncio.sleep(0)


def records_of(audit_dir: Path) -> list[dict[str, object]]:
    text = (audit_dir / "audit.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


@contextlib.asynccontextmanager
async def writer_log(
    audit_dir: Path, *, key: bytes = KEY, clock: FakeClock | None = None
) -> AsyncIterator[AuditLog]:
    """A log whose coroutines' records go to a writer process, ended after the block."""
    log = AuditLog(audit_dir, key, clock=clock, writer_process=True)
    try:
        yield log
    finally:
        await log.aclose()


def writer_of(log: AuditLog) -> asyncio.subprocess.Process:
    link = log._process
    assert link is not None
    assert link.process is not None
    return link.process


def test_records_from_the_writer_process_chain_with_the_clis_and_verify(
    tmp_path: Path,
) -> None:
    audit_dir = tmp_path / "audit"
    clock = FakeClock()

    async def main() -> None:
        async with writer_log(audit_dir, clock=clock) as log:
            first = await asyncio.gather(*(log.append("operation", n=n) for n in range(20)))
            # Another process's records (the CLI's) in between: the chain goes on.
            with AuditLog(audit_dir, KEY) as cli:
                cli.append_sync("totp_enrolled", replaced=False)
            clock.advance(5)
            later = await log.append("operation", n=20, token="alk_" + "x" * 40)
            assert log.last_seq == later.seq == 22
        assert [r.seq for r in first] == list(range(1, 21))
        written = records_of(audit_dir)
        assert [r["seq"] for r in written] == list(range(1, 23))
        assert [r["mac"] for r in written[:20]] == [r.mac for r in first]
        assert written[0]["ts"] == format_ts(clock.now() - 5)  # the log's clock, not the process's
        assert written[21]["ts"] == later.ts == format_ts(clock.now())
        assert written[21]["token"] == "[redacted]"
        assert verify(audit_dir, KEY).ok

    run(main)


def test_the_key_is_in_neither_the_writers_arguments_nor_its_environment(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with writer_log(tmp_path / "audit", key=PRINTABLE_KEY) as log:
            await log.append("daemon_started")
            proc = Path(f"/proc/{writer_of(log).pid}")
            seen = [
                await asyncio.to_thread((proc / name).read_bytes) for name in ("cmdline", "environ")
            ]
        key = PRINTABLE_KEY
        for form in (key, key.hex().encode(), key.hex().upper().encode()):
            assert all(form not in text for text in seen)

    run(main)


def test_the_writer_runs_in_a_session_of_its_own(tmp_path: Path) -> None:
    """Its own CPU share where the kernel shares by session (autogroup), so a batch's
    records do not wait for the busy daemon to let it run; and the terminal's signals to
    the daemon's foreground group (Ctrl-C, Ctrl-Z) do not stop it mid-batch."""

    async def main() -> None:
        async with writer_log(tmp_path / "audit") as log:
            await log.append("daemon_started")
            writer = writer_of(log).pid
            assert os.getsid(writer) == writer
            assert os.getpgid(writer) != os.getpgid(0)
            assert _autogroup(str(writer)) != _autogroup("self") or _autogroup("self") is None

    run(main)


_PARENT = """
import asyncio, sys
from pathlib import Path
from airlock.security.audit import AuditLog

async def main():
    log = AuditLog(Path(sys.argv[1]), bytes(range(32)), writer_process=True)
    await log.append("daemon_started")
    print(log._process.process.pid, flush=True)
    sys.stdin.readline()  # the test holds the log's lock now
    await log.append("operation")  # the writer waits for the lock: stuck
asyncio.run(main())
"""


def test_a_writer_stuck_when_the_daemon_is_killed_dies_with_it(tmp_path: Path) -> None:
    """In a session of its own, a kill of the daemon's process group (the service
    supervisor's last resort) misses the writer; the kernel ends it with the daemon
    instead, even while it waits for the log's lock and would not see the channel close."""
    audit_dir = tmp_path / "audit"
    daemon = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(audit_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert daemon.stdout is not None
    assert daemon.stdin is not None
    writer = int(daemon.stdout.readline())
    lock = os.open(audit_dir / ".audit.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        daemon.stdin.write("go\n")
        daemon.stdin.flush()
        deadline = time.monotonic() + 10
        while "lock" not in _waiting_in(writer) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "lock" in _waiting_in(writer), "the writer never waited for the lock"
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        deadline = time.monotonic() + 10
        while _alive(writer) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _alive(writer), "the writer outlived the daemon"
    finally:
        os.close(lock)
        if _alive(writer):
            os.kill(writer, signal.SIGKILL)


def _waiting_in(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running or asleep; not a zombie (nobody here may reap an orphan) and not gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _autogroup(pid: str) -> str | None:
    """The scheduler's group of process *pid*; None where the kernel names none: built
    without autogroup (no file), or the process is still in the root group, where every
    process is until a new session is made above it (the file reads empty: a container's
    first process and what it starts without a new session, as the CI machine runs tests)."""
    try:
        fields = Path(f"/proc/{pid}/autogroup").read_text().split()
    except FileNotFoundError:
        return None
    return fields[0] if fields else None


def test_records_waiting_when_the_writer_dies_fail_and_the_next_starts_it_again(
    tmp_path: Path,
) -> None:
    audit_dir = tmp_path / "audit"

    async def main() -> None:
        async with writer_link(audit_dir, restart_gap=RESTART_GAP) as link:
            await link.append("daemon_started", "")
            process = link.process
            assert process is not None
            os.kill(process.pid, signal.SIGSTOP)  # it reads nothing more
            waiting = [asyncio.ensure_future(link.append("operation", f',"n":{n}')) for n in (1, 2)]
            await asyncio.sleep(0)
            os.kill(process.pid, signal.SIGKILL)
            results = await asyncio.gather(*waiting, return_exceptions=True)
            assert all(isinstance(r, AuditError) for r in results), results
            # Within the gap after a start, a record fails at once (no start in a loop).
            with pytest.raises(AuditError, match="starts again"):
                await link.append("operation", ',"n":3')
            link.restart_gap = 0.0
            after = await link.append("operation", ',"n":4')
            assert link.process is not None
            assert link.process.pid != process.pid
        assert after.seq == 2  # the killed batch never reached the file
        assert verify(audit_dir, KEY).ok

    run(main)


def test_a_stuck_writer_fails_the_records_waiting_on_it_and_the_next_replaces_it(
    tmp_path: Path,
) -> None:
    """A writer that stops answering (stopped by a signal, or its disk hung) fails the
    records waiting on it after the answer wait, not never, and is killed; the next
    record starts another, and the chain goes on."""
    audit_dir = tmp_path / "audit"

    async def main() -> None:
        async with writer_link(audit_dir, answer_wait=1.0) as link:
            await link.append("daemon_started", "")
            stuck = link.process
            assert stuck is not None
            os.kill(stuck.pid, signal.SIGSTOP)
            try:
                with pytest.raises(AuditError, match=r"did not answer for 1s"):
                    await asyncio.wait_for(link.append("operation", ',"n":1'), 10)
                after = await asyncio.wait_for(link.append("operation", ',"n":2'), 10)
                assert link.process is not None
                assert link.process.pid != stuck.pid
                assert await asyncio.wait_for(stuck.wait(), 10) == -signal.SIGKILL
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(stuck.pid, signal.SIGCONT)
        assert after.seq == 2  # the record the stuck writer never read is not in the log
        assert [r["event"] for r in records_of(audit_dir)] == ["daemon_started", "operation"]
        assert verify(audit_dir, KEY).ok

    run(main)


def test_a_writer_that_never_says_ready_fails_the_start_instead_of_holding_it(
    tmp_path: Path,
) -> None:
    audit_dir = tmp_path / "audit"

    async def main() -> None:
        async with writer_link(audit_dir, answer_wait=1.0) as link:
            real_spawn = link._spawn
            started: list[asyncio.subprocess.Process] = []

            async def spawn_and_stop() -> Any:
                channel = await real_spawn()
                assert link.process is not None
                os.kill(link.process.pid, signal.SIGSTOP)  # before it can say ready
                started.append(link.process)
                return channel

            link._spawn = spawn_and_stop  # type: ignore[method-assign]
            with pytest.raises(AuditError, match="did not answer"):
                await asyncio.wait_for(link.append("daemon_started", ""), 10)
            # Killed at once: a stop of the daemon does not wait for it in vain.
            assert await asyncio.wait_for(started[0].wait(), 5) == -signal.SIGKILL

    run(main)


def test_a_writer_that_pauses_briefly_is_not_taken_for_stuck(tmp_path: Path) -> None:
    """The wait is counted from when a record starts waiting, not from the writer's
    start: a record sent just before the answer wait has passed since the start, to a
    writer that pauses a moment, is written, and the writer is not killed."""

    async def main() -> None:
        async with writer_link(tmp_path / "audit", answer_wait=1.0) as link:
            # The writer starts for a record whose caller went away before it was sent.
            starting = asyncio.ensure_future(link.append("daemon_started", ""))
            await until(lambda: link._channel is not None)
            starting.cancel()  # while it waits for the writer's ready
            await asyncio.wait_for(asyncio.shield(link._channel.ready), 5)
            assert starting.cancelled()
            writer = link.process
            assert writer is not None
            await asyncio.sleep(0.8)
            os.kill(writer.pid, signal.SIGSTOP)
            try:
                record = asyncio.ensure_future(link.append("operation", ',"n":1'))
                await asyncio.sleep(0.4)  # past the start's check, paused all along
            finally:
                os.kill(writer.pid, signal.SIGCONT)
            assert (await asyncio.wait_for(record, 5)).seq == 1
            assert link.process is writer
            assert writer.returncode is None  # not killed

    run(main)


def test_a_record_sent_on_a_channel_that_just_broke_fails_at_once(tmp_path: Path) -> None:
    """The channel broke between the record's caller finding it and sending on it (the
    writer died as it said ready): the record fails now, it is not left waiting on a
    channel nothing answers any more."""

    async def main() -> None:
        async with writer_link(tmp_path / "audit") as link:
            await link.append("daemon_started", "")
            channel = link._channel
            assert channel is not None
            channel.close()
            await asyncio.sleep(0.05)  # and all that follows a close has run
            with pytest.raises(AuditError, match="writer stopped"):
                await asyncio.wait_for(channel.send("operation", ""), 5)

    run(main)


def test_a_record_the_disk_refuses_fails_closed_and_the_next_links_to_the_last_good(
    tmp_path: Path,
) -> None:
    audit_dir = tmp_path / "audit"

    async def main() -> None:
        async with writer_log(audit_dir) as log:
            await log.append("daemon_started")
            current = audit_dir / "audit.jsonl"
            current.rename(audit_dir / "aside.jsonl")
            current.mkdir()  # nothing can be written where the file was
            refused = await asyncio.gather(
                *(log.append("operation", n=n) for n in range(3)), return_exceptions=True
            )
            assert all(isinstance(r, AuditError) for r in refused), refused
            assert "not written" in str(refused[0])
            current.rmdir()
            (audit_dir / "aside.jsonl").rename(current)
            assert (await log.append("operation", n=3)).seq == 2
        assert verify(audit_dir, KEY).ok

    run(main)


def test_the_writer_ends_when_the_log_closes(tmp_path: Path) -> None:
    async def main() -> None:
        log = AuditLog(tmp_path / "audit", KEY, writer_process=True)
        await log.append("daemon_started")
        process = writer_of(log)
        await log.aclose()
        assert process.returncode == 0
        with pytest.raises(AuditError):
            await log.append("operation")  # closed: nothing is written any more

    run(main)


def test_a_line_that_is_not_the_protocol_ends_the_writer(tmp_path: Path) -> None:
    ours, theirs = socket.socketpair()
    audit_file = AuditFile(tmp_path / "audit", KEY, rotate_bytes=1 << 20, clock=FakeClock())
    ended: list[BaseException] = []

    def writer() -> None:
        try:
            serve(theirs, audit_file)
        except BaseException as exc:
            ended.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    good = f"T{format_ts(0)}\nRoperation\t{fields_json({'n': 1})}\n".encode()
    ours.sendall(good)
    assert ours.recv(200).split()[0] == b"1"  # the good record was written and answered
    ours.sendall(b"Xnot a line of it\n")
    thread.join(10)
    assert len(ended) == 1
    assert isinstance(ended[0], Broken)
    ours.close()
    theirs.close()
    audit_file.close()


def test_the_writer_asks_for_the_key_only_once_it_refuses_ptrace(tmp_path: Path) -> None:
    """It says ready after making itself non-dumpable; the key is sent only then, so it
    never waits in the socket while a process of the same user could read the writer."""
    ours, theirs = socket.socketpair()
    argv = [sys.executable, "-P", "-m", "airlock.security._audit_writer"]
    argv += ["--fd", str(theirs.fileno()), "--dir", str(tmp_path / "audit")]
    writer = subprocess.Popen([*argv, "--rotate-bytes", "65536"], pass_fds=[theirs.fileno()])
    theirs.close()
    ours.settimeout(30)
    try:
        assert ours.recv(100) == READY  # before anything was sent to it
        ours.sendall(KEY + f"T{format_ts(0)}\nRdaemon_started\t\n".encode())
        assert ours.recv(200).split()[0] == b"1"
    finally:
        ours.close()
        assert writer.wait(30) == 0
    assert verify(tmp_path / "audit", KEY).ok


def link_at(
    audit_dir: Path, restart_gap: float = 0.0, answer_wait: float = ANSWER_WAIT
) -> WriterLink:
    return WriterLink(
        audit_dir,
        KEY,
        rotate_bytes=1 << 20,
        now=lambda: format_ts(0),
        restart_gap=restart_gap,
        answer_wait=answer_wait,
    )


@contextlib.asynccontextmanager
async def writer_link(
    audit_dir: Path, restart_gap: float = 0.0, answer_wait: float = ANSWER_WAIT
) -> AsyncIterator[WriterLink]:
    link = link_at(audit_dir, restart_gap, answer_wait)
    try:
        yield link
    finally:
        link.close()
        await link.wait_closed()


def test_a_record_sent_while_the_writer_starts_waits_for_the_key(tmp_path: Path) -> None:
    async def main() -> None:
        async with writer_link(tmp_path / "audit") as link:
            first = asyncio.ensure_future(link.append("daemon_started", ""))
            await until(lambda: link._channel is not None)  # the writer is up, keyless
            assert not first.done()
            second = await link.append("operation", ',"n":1')
            assert sorted([(await first).seq, second.seq]) == [1, 2]
        assert verify(tmp_path / "audit", KEY).ok

    run(main)


def test_records_cut_off_while_the_writer_was_down_are_not_written_over(
    tmp_path: Path,
) -> None:
    audit_dir = tmp_path / "audit"

    async def main() -> None:
        async with writer_link(audit_dir) as link:
            for n in range(3):
                await link.append("operation", f',"n":{n}')
            current = audit_dir / "audit.jsonl"
            first_line = current.read_bytes().splitlines(keepends=True)[0]
            assert link.process is not None
            link.process.kill()  # the writer stops; someone cuts the log meanwhile
            await link.process.wait()
            current.write_bytes(first_line)
            with pytest.raises(AuditError, match="gone"):
                await link.append("operation", ',"n":3')
            assert link.last_seq == 3

    run(main)


def test_a_log_closed_while_its_writer_starts_writes_nothing_and_leaves_no_writer(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        link = link_at(tmp_path / "audit")
        pending = asyncio.ensure_future(link.append("daemon_started", ""))
        await until(lambda: link.process is not None)
        process = link.process
        link.close()
        with pytest.raises(AuditError, match=r"closed|stopped"):
            await pending
        await link.wait_closed()
        assert await asyncio.wait_for(process.wait(), 10) is not None
        assert not (tmp_path / "audit" / "audit.jsonl").exists()

    run(main)
