"""``python -m airlock.security._audit_writer``: the daemon's audit writer, a process.

In the daemon's own process a batch's share of Python work (formatting the lines, their
macs, taking the interpreter lock back after each system call) waited for the event
loop between its callbacks, and every call waited for its batch: the batch took three
times its work (docs/performance.md). Here it runs beside the loop.

The daemon starts it with one end of a socket pair (``--fd``). It says ``ready`` once no
process of its user may read its memory, and only then does the daemon send the audit
key (32 bytes; never in argv or the environment, never waiting in the socket while the
new process could still be read), then lines:

* ``T<ts>``: the time of the records that follow, by the daemon's clock;
* ``R<event>\\t<fields>``: one record, its fields as the ``,"k":v`` text the daemon made
  (ASCII JSON: no raw tab or line break).

Each record gets one line back, in order: ``<seq> <ts> <mac>`` once it is durable, or
``!<reason>`` if it is not (its batch rolled back, as :class:`AuditFile` does). The
records that have arrived whole when it reads go in one batch: one write, one
``fdatasync``. Anything else from the daemon ends the process, as does the end of the
daemon's side. Interrupts and SIGTERM are ignored: the daemon records its own stop, and
this process stops when the daemon has.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
from pathlib import Path

from airlock.common.clock import SystemClock
from airlock.errors import AuditError
from airlock.security._audit_chain import TS_LEN
from airlock.security._audit_file import AuditFile, AuditRecord
from airlock.security._audit_format import KEY_BYTES

__all__ = ["READY", "answer_lines", "main", "serve", "whole_lines"]

READ_SIZE = 1 << 20
READY = b"ready\n"
"""The writer's first line: it may be sent the key."""


class Broken(Exception):
    """The daemon sent something that is not a line of this protocol."""


def serve(sock: socket.socket, audit_file: AuditFile) -> None:
    """Answer the daemon's records until its side closes."""
    pending = bytearray()
    ts: str | None = None
    # Read into one buffer made once: ``recv(READ_SIZE)`` allocated a 1 MiB object for
    # every batch and shrank it (mmap, mremap, munmap): ~13 us a batch, on the path every
    # call waits on.
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    while True:
        size = sock.recv_into(buffer)
        if not size:
            return
        pending += view[:size]
        batch: list[tuple[str, str]] = []
        for line in whole_lines(pending):
            ts = _read_line(line, batch, ts)
        if batch:
            sock.sendall(answer_lines(audit_file, batch, ts))


def whole_lines(buffer: bytearray) -> list[bytes]:
    """The lines *buffer* holds whole (taken out of it, without their line breaks)."""
    end = buffer.rfind(b"\n")
    if end < 0:
        return []
    lines = bytes(buffer[:end]).split(b"\n")
    del buffer[: end + 1]
    return lines


def _read_line(line: bytes, batch: list[tuple[str, str]], ts: str | None) -> str | None:
    """Add a record line to *batch*, or take a time line; the time in force after it."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise Broken("a line that is not ASCII") from None
    kind, rest = text[:1], text[1:]
    if kind == "T" and len(rest) == TS_LEN:
        return rest
    if kind == "R" and "\t" in rest:
        event, _, fields = rest.partition("\t")
        batch.append((event, fields))
        return ts
    raise Broken("a line that is neither a time nor a record")


def answer_lines(audit_file: AuditFile, batch: list[tuple[str, str]], ts: str | None) -> bytes:
    """Commit *batch*; one answer line for each record."""
    try:
        records = audit_file.commit(batch, ts=ts)
    except AuditError as exc:
        reason = " ".join(exc.message.split())  # one line, whatever the error said
        return f"!{reason}\n".encode("ascii", "replace") * len(batch)
    return "".join(_answer(record) for record in records).encode("ascii")


def _answer(record: AuditRecord) -> str:
    return f"{record.seq} {record.ts} {record.mac}\n"


def _read_key(sock: socket.socket) -> bytes:
    key = b""
    while len(key) < KEY_BYTES:
        data = sock.recv(KEY_BYTES - len(key))
        if not data:
            raise Broken("the daemon closed before sending the key")
        key += data
    return key


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m airlock.security._audit_writer")
    parser.add_argument("--fd", type=int, required=True, help="the daemon's socket pair end")
    parser.add_argument("--dir", type=Path, required=True, help="the audit directory")
    parser.add_argument("--rotate-bytes", type=int, required=True)
    parser.add_argument(
        "--written-up-to",
        type=int,
        default=0,
        help="the last seq the daemon's writers wrote: a log cut below it is refused",
    )
    args = parser.parse_args(argv)
    from airlock.common.processes import end_with_parent
    from airlock.ptrace import refuse_ptrace

    refuse_ptrace()  # before the key is sent: no process of this user may read it here
    end_with_parent()  # in a session of its own: no kill of the daemon's group reaches it
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sock = socket.socket(fileno=args.fd)
    audit_file: AuditFile | None = None
    try:
        sock.sendall(READY)
        key = _read_key(sock)
        audit_file = AuditFile(
            args.dir,
            key,
            rotate_bytes=args.rotate_bytes,
            clock=SystemClock(),
            written_up_to=args.written_up_to,
        )
        serve(sock, audit_file)
    except (Broken, ConnectionError):
        pass  # the daemon is gone or broken: it fails its waiting records itself
    finally:
        if audit_file is not None:
            audit_file.close()
        with contextlib.suppress(OSError):
            sock.close()


if __name__ == "__main__":
    main()
