"""The audit log's current file, as one process sees it: the ``flock`` a batch holds,
re-reading the tail when another process wrote, the chain's next link, one write and
one ``fdatasync`` a batch, the roll-back of a failed batch, and rotation (see
:mod:`airlock.security.audit` for the format and the guarantees)."""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airlock.common.clock import Clock
from airlock.common.files import PRIVATE_FILE, ensure_private_dir, fsync_dir
from airlock.errors import AuditError
from airlock.security._audit_chain import GENESIS, Mac, body_of, framed, mac_of, prev_of
from airlock.security._audit_format import (
    CURRENT_NAME,
    encode_line,
    first_line_of,
    format_ts,
    log_files,
    read_tail,
    rotated_name,
)


@dataclass(slots=True)  # not frozen: one is made for every record, and frozen costs 2x
class AuditRecord:
    """What ``append`` wrote: enough to cite the record (seq) and link to it (mac)."""

    seq: int
    ts: str
    event: str
    mac: str


def audit_error(reason: str) -> AuditError:
    """What a writer waiting for a record that was not written is told."""
    return AuditError(
        f"audit record not written: {reason}",
        hint="nothing was served; check the disk and run `airlock audit verify`",
    )


@dataclass
class _Chain:
    seq: int = 0
    mac: str = GENESIS
    ts: str = ""


@dataclass
class _Current:
    """The open ``audit.jsonl`` as this process last saw it."""

    fd: int
    ident: tuple[int, int]
    size: int
    first: tuple[int, str] | None = None  # (seq, ts) of its first record
    repaired: int = 0


class AuditFile:
    """Writes batches of records to ``audit.jsonl`` under the chain; not thread-safe
    (``AuditLog`` lets one leader at a time in)."""

    def __init__(
        self,
        audit_dir: Path,
        key: bytes,
        *,
        rotate_bytes: int,
        clock: Clock,
        written_up_to: int = 0,
    ) -> None:
        """*written_up_to*: records before this file that must still be there (a writer
        process started again: those of the one before)."""
        self.audit_dir = audit_dir
        self.current_path = audit_dir / CURRENT_NAME
        self._current_name = str(self.current_path)  # str: stat on every batch, skip pathlib
        self._key = key
        self._rotate_bytes = rotate_bytes
        self._clock = clock
        self._chain = _Chain(seq=written_up_to)
        self._current: _Current | None = None
        self._lock_fd: int | None = None

    @property
    def last_seq(self) -> int:
        return self._chain.seq

    def close(self) -> None:
        if self._current is not None:
            os.close(self._current.fd)
            self._current = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def commit(self, batch: list[tuple[str, str]], *, ts: str | None = None) -> list[AuditRecord]:
        """Write (event, fields JSON) pairs as records, durably; ``AuditError`` if not.
        Their time is *ts* (by the clock of the process that made them) or now."""
        try:
            with self._file_lock():
                current = self._sync_with_disk()
                return self._write_batch(current, batch, ts or format_ts(self._clock.now()))
        except OSError as exc:
            raise AuditError(exc.strerror or str(exc)) from None

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if self._lock_fd is None:
            ensure_private_dir(self.audit_dir)
            self._lock_fd = os.open(
                self.audit_dir / ".audit.lock",
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                PRIVATE_FILE,
            )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _sync_with_disk(self) -> _Current:
        """The open current file, reopened and re-read if anyone else changed it."""
        current = self._current
        try:
            st = os.stat(self._current_name, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if (
            current is not None
            and st is not None
            and (st.st_dev, st.st_ino) == current.ident
            and st.st_size == current.size
        ):
            return current
        if current is not None:
            os.close(current.fd)
            self._current = None
        # Read-write, not write-only: the tail is read back through this descriptor.
        fd = os.open(
            self.current_path,
            os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
            PRIVATE_FILE,
        )
        try:
            os.fchmod(fd, PRIVATE_FILE)
            info = os.fstat(fd)
            if st is None:
                fsync_dir(self.audit_dir)
            last, good = read_tail(fd)
            repaired = info.st_size - good
            if repaired:
                os.ftruncate(fd, good)
                os.fsync(fd)
            current = _Current(fd, (info.st_dev, info.st_ino), good, repaired=repaired)
            if good:
                current.first = _seq_ts(first_line_of(fd), self.current_path)
            chain = self._chain_from(last)
            if chain.seq < self._chain.seq:
                # Records this process wrote are gone: someone cut the log. Continuing
                # would chain new records onto the cut and hide it; refuse instead.
                raise AuditError(
                    f"{self.current_path}: records after seq {chain.seq} are gone "
                    f"(this daemon wrote up to {self._chain.seq})",
                    hint="the audit log was cut; run `airlock audit verify` and investigate",
                )
            self._chain = chain
        except BaseException:
            os.close(fd)
            raise
        self._current = current
        return current

    def _chain_from(self, last: bytes | None) -> _Chain:
        if last is None:
            rotated = [f for f in log_files(self.audit_dir) if f.first_seq is not None]
            if not rotated:
                return _Chain()
            with open(rotated[-1].path, "rb") as handle:
                last, _ = read_tail(handle.fileno())
            if last is None:
                return _Chain()
        if not self._authentic(last):
            # Its seq and mac would be trusted blindly otherwise: a forged line with a
            # high seq after a cut would hide the cut and take over the chain.
            raise AuditError(
                "the last audit record does not verify with the daemon's key, "
                "so the chain cannot continue",
                hint="the audit log was edited; run `airlock audit verify` and investigate",
            )
        try:
            record = json.loads(last)
            return _Chain(int(record["seq"]), str(record["mac"]), str(record["ts"]))
        except (ValueError, KeyError, TypeError):
            raise AuditError(
                "the last audit record is unreadable, so the chain cannot continue"
            ) from None

    def _authentic(self, line: bytes) -> bool:
        """Whether *line* is a record made with our key (its mac over its prev and body)."""
        if not framed(line):
            return False
        try:
            prev = bytes.fromhex(prev_of(line).decode("ascii"))
        except ValueError:
            return False
        expected = Mac(self._key).of(prev, body_of(line)).hex().encode("ascii")
        return hmac.compare_digest(expected, mac_of(line))

    def _write_batch(
        self, current: _Current, batch: list[tuple[str, str]], now: str
    ) -> list[AuditRecord]:
        chain = _Chain(self._chain.seq, self._chain.mac, self._chain.ts)
        ts = max(now, chain.ts)
        entries = list(batch)
        if current.repaired:
            entries.insert(0, ("audit_tail_repaired", f',"dropped_bytes":{current.repaired}'))
        lines: list[bytes] = []
        records: list[AuditRecord] = []
        for event, extra in entries:
            chain.seq += 1
            line, chain.mac = encode_line(self._key, chain.seq, ts, event, extra, chain.mac)
            lines.append(line)
            records.append(AuditRecord(chain.seq, ts, event, chain.mac))
        chain.ts = ts
        data = b"".join(lines)
        try:
            _write_all(current.fd, data)
            os.fdatasync(current.fd)
        except OSError:
            self._roll_back(current)
            raise
        if current.first is None:
            current.first = (records[0].seq, ts)
        current.size += len(data)
        current.repaired = 0
        self._chain = chain
        if current.size >= self._rotate_bytes:
            with contextlib.suppress(OSError):  # records are safe; retry on the next batch
                self._rotate(current)
        return records[len(entries) - len(batch) :]

    def _roll_back(self, current: _Current) -> None:
        """Cut a failed batch off the file; if even that fails, reopen next time."""
        try:
            os.ftruncate(current.fd, current.size)
            os.fsync(current.fd)
        except OSError:
            os.close(current.fd)
            self._current = None

    def _rotate(self, current: _Current) -> None:
        first_seq, first_ts = current.first or (self._chain.seq, self._chain.ts)
        target = self.audit_dir / rotated_name(first_ts, first_seq)
        if target.exists():
            return
        os.rename(self.current_path, target)
        fsync_dir(self.audit_dir)
        os.close(current.fd)
        self._current = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _seq_ts(line: bytes, path: Path) -> tuple[int, str]:
    try:
        record = json.loads(line)
        return int(record["seq"]), str(record["ts"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise AuditError(f"{path}: the first record is unreadable") from None
