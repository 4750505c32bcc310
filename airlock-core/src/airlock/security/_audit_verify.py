"""Checking the audit log's chain: ``verify``.

It leaves the per-record work to ``_audit_chain`` and, for a log of several large files,
runs it in worker processes, one file each, then checks that each file starts where the
previous one ended. The daemon may rotate the log (or drop its oldest file) while this
runs; a verdict reached while the directory's files changed is checked again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airlock.errors import AuditError
from airlock.security._audit_chain import (
    GENESIS,
    FileCheck,
    Mac,
    body_of,
    check_file,
    claimed_start,
    framed,
    mac_of,
    prev_of,
    seq_of,
)
from airlock.security._audit_format import load_key, log_files
from airlock.security._audit_read import query
from airlock.security._audit_retention import DROP_EVENT, dropped_start_vouched

__all__ = ["VerifyProblem", "VerifyResult", "verify"]

PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # below this, starting workers costs more than it saves
TRIES = 10
"""Checks of a log that keeps changing under the check (a busy daemon rotating it)."""


@dataclass(frozen=True)
class VerifyProblem:
    """The first place the chain breaks: file, 1-based line, and what is wrong."""

    file: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    files: list[Path] = field(default_factory=list)
    problem: VerifyProblem | None = None
    last_seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "files": [str(f) for f in self.files],
            "last_seq": self.last_seq,
            "problem": None
            if self.problem is None
            else {
                "file": str(self.problem.file),
                "line": self.problem.line,
                "reason": self.problem.reason,
            },
        }


def _diagnose(line: bytes, mac: Mac, expected_seq: int, prev_hex: bytes) -> str:
    """Why a line that is not the next record of the chain is bad, in a person's words."""
    if not line.endswith(b"\n"):
        return "the last line is cut short (crash while writing, or truncated)"
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        return "not a JSON record (damaged or cut short)"
    if not isinstance(record, dict) or "mac" not in record:
        return "not an audit record"
    if not framed(line):
        return "record was changed (not in the form Airlock writes)"
    try:
        computed = mac.of(bytes.fromhex(prev_of(line).decode("ascii")), body_of(line))
        intact = computed.hex().encode() == mac_of(line)
    except ValueError:
        intact = False
    if not intact:
        return "mac mismatch: the record was changed"
    seq = seq_of(line)
    if seq is not None and seq > expected_seq:
        missing = (
            f"record {expected_seq} is missing"
            if seq == expected_seq + 1
            else f"records {expected_seq}-{seq - 1} are missing"
        )
        return f"sequence gap: expected seq {expected_seq}, found {seq} ({missing})"
    if seq != expected_seq:
        return f"out of order: expected seq {expected_seq}, found {seq} (records moved or repeated)"
    if prev_of(line) != prev_hex:
        return "chain broken: prev is not the previous record's mac"
    return "record was changed"


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.readline(65536)


def verify(audit_dir: Path, key: bytes, *, workers: int | None = None) -> VerifyResult:
    """Check every record's mac, ``seq`` and ``prev`` across all files, oldest first.

    A problem found, or a file gone, while the directory's list of files changed (the
    daemon rotated the log or dropped a file meanwhile) is checked again, up to
    :data:`TRIES` times: the files read did not form one state of the log. A log still
    changing after that is an ``AuditError`` (run it again), never a false verdict.
    """
    for _ in range(TRIES):
        files = [f.path for f in log_files(audit_dir)]
        try:
            result: VerifyResult | None = _verify_once(audit_dir, files, key, workers)
        except FileNotFoundError:
            result = None
        if result is not None and (result.ok or _names(audit_dir) == [p.name for p in files]):
            return result
    raise AuditError(
        "the audit log changed while it was checked, each time (the daemon is rotating it)",
        hint="run `airlock audit verify` again",
    )


def _names(audit_dir: Path) -> list[str]:
    return [f.path.name for f in log_files(audit_dir)]


def _verify_once(
    audit_dir: Path, files: list[Path], key: bytes, workers: int | None
) -> VerifyResult:
    """One pass of :func:`verify` over *files*, the directory's log files as listed.

    Stops at the first problem and names its file and line: an edited record fails its
    mac, a deleted or reordered one breaks ``seq``, a line cut short does not parse, and a
    record spliced in from elsewhere breaks ``prev``.

    *workers*: processes to use (default: one per CPU, and only for several files of
    ``PARALLEL_MIN_BYTES`` or more in all); 1 checks everything in this process.
    """
    kept_from = _kept_start(files)
    mac = Mac(key)
    if workers is None:
        total = sum(_size(path) for path in files)
        workers = (os.cpu_count() or 1) if total >= PARALLEL_MIN_BYTES else 1
    workers = min(workers, len(files))
    # Older files may have been dropped under audit.max_bytes: the chain of what is kept
    # starts where the first kept file says, which a drop record must vouch for (below).
    expected, prev = kept_from or (1, GENESIS.encode("ascii"))
    count = 0
    checks = _check_parallel(files, key, workers) if workers > 1 else None
    for index, path in enumerate(files):
        if checks is None:
            check = check_file(str(path), key, expected, prev)
        else:
            check = checks[index]
            if check.good == 0 and check.bad_line is None:
                continue  # empty file
            if check.bad_line != 1 and (check.start_seq, check.start_prev) != (expected, prev):
                # The file is sound on its own but does not continue the chain.
                reason = _diagnose(_first_line(path), mac, expected, prev)
                return VerifyResult(False, count, files, VerifyProblem(path, 1, reason), count)
            if check.bad_line == 1:
                check = check_file(str(path), key, expected, prev)
        count += check.good
        if check.bad_line is not None:
            reason = _diagnose(check.bad_text, mac, expected + check.good, check.last_mac)
            problem = VerifyProblem(path, check.bad_line, reason)
            return VerifyResult(False, count, files, problem, count)
        expected, prev = expected + check.good, check.last_mac
    if kept_from is not None:
        drops = query(audit_dir, event=DROP_EVENT)
        if not dropped_start_vouched(drops, kept_from[0], kept_from[1].decode("ascii")):
            reason = (
                f"records before seq {kept_from[0]} are missing and no "
                f"{DROP_EVENT} record accounts for them"
            )
            return VerifyResult(False, count, files, VerifyProblem(files[0], 1, reason), 0)
    return VerifyResult(True, count, files, None, expected - 1)


def _kept_start(files: list[Path]) -> tuple[int, bytes] | None:
    """Where the first non-empty file's chain claims to start, if not at seq 1."""
    for path in files:
        claim = claimed_start(str(path))
        if claim is None:
            if _size(path):
                return None  # unframed: the normal check reports it
            continue
        return None if claim[0] == 1 else claim
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _check_parallel(files: list[Path], key: bytes, workers: int) -> list[FileCheck]:
    # spawn, not fork: the caller may have threads (fork would copy their locks).
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(check_file, [str(p) for p in files], [key] * len(files)))


def verify_dir(audit_dir: Path, key_file: Path) -> VerifyResult:
    """``airlock audit verify`` without the CLI: load the key, verify the directory.

    No key and no log is a fresh install (nothing to check); log files without their key
    cannot be checked and raise ``AuditError``.
    """
    if not key_file.exists() and not log_files(audit_dir):
        return VerifyResult(True, 0)
    return verify(audit_dir, load_key(key_file))
