"""The audit directory's size budget (``audit.max_bytes``): which old files may go.

Only whole rotated files go, oldest first, never the current ``audit.jsonl``, and only a
file whose every record verifies with the key and continues the chain kept so far: an
unverified file is never dropped silently, it stays until someone looks
(``airlock audit verify``). Before a file is deleted the writer appends an
``audit_files_dropped`` record naming its first and last ``seq`` and its last ``mac``, so
``audit verify`` can start the chain of what is kept from that authenticated statement
(see :func:`dropped_start_vouched`). The oldest file is dropped only if the log may start
where it does (seq 1, or vouched for by an earlier drop): files deleted behind the
daemon's back stay visible to ``audit verify`` instead of being covered by a new drop.
Nor is a file dropped that holds a record from the last ``audit.keep_for``: whoever can
make records fast (an agent with a session) must not be able to push its own recent ones
out; the directory stays over budget instead, and the person is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from airlock.security._audit_chain import HEAD, SEQ_AT, check_file, claimed_start
from airlock.security._audit_format import log_files
from airlock.security._audit_read import query

DROP_EVENT = "audit_files_dropped"
YOUNG = "holds records younger than keep_for"
"""How a refusal for a file's recent records ends (the file's name before it)."""
TAIL_BYTES = 1 << 16
"""How much of a file is read at a time, from its end, to find where its last line
starts (the record's time is at the start of its line, however long the line)."""


@dataclass(frozen=True)
class Drop:
    """A rotated file that verified and may be deleted, and what its record says."""

    path: Path
    first_seq: int
    last_seq: int
    last_mac: str
    size: int

    def record_fields(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "last_mac": self.last_mac,
            "bytes": self.size,
        }


@dataclass(frozen=True)
class Plan:
    drops: list[Drop]
    refused: str | None = None
    """Why the next file over the budget is kept anyway (it does not verify)."""


def plan_drops(audit_dir: Path, key: bytes, max_bytes: int, keep_from: str = "") -> Plan:
    """The oldest rotated files to delete so the directory fits *max_bytes*, none holding
    a record stamped *keep_from* (an audit ``ts``) or later."""
    files = log_files(audit_dir)
    sizes = {f.path: _size(f.path) for f in files}
    total = sum(sizes.values())
    rotated = [f for f in files if f.first_seq is not None]
    drops: list[Drop] = []
    for file in rotated[:-1]:  # the newest rotated file stays: it links to the current one
        if total <= max_bytes:
            break
        if (
            keep_from and _last_ts(file.path, sizes[file.path]) >= keep_from
        ):  # checked before the costly part
            return Plan(drops, refused=f"{file.path.name} {YOUNG}")
        start = claimed_start(str(file.path))
        check = check_file(str(file.path), key, *start) if start else None
        if check is None or check.bad_line is not None or check.good == 0:
            return Plan(drops, refused=f"{file.path.name} does not verify")
        assert start is not None
        if drops and start[0] != drops[-1].last_seq + 1:
            return Plan(drops, refused=f"{file.path.name} does not continue the chain")
        if not drops and not _start_accounted_for(audit_dir, start[0], start[1]):
            # Older files were deleted without a record: dropping this one would leave a
            # log whose every gap has a record, and hide that deletion from verify.
            return Plan(
                drops,
                refused=f"records before seq {start[0]} are missing and no {DROP_EVENT} "
                "record accounts for them",
            )
        drops.append(
            Drop(
                file.path,
                start[0],
                start[0] + check.good - 1,
                check.last_mac.decode("ascii"),
                sizes[file.path],
            )
        )
        total -= sizes[file.path]
    return Plan(drops)


def _start_accounted_for(audit_dir: Path, seq: int, prev: bytes) -> bool:
    """Whether the log may start at *seq*: it is the first record, or a drop vouches."""
    if seq == 1:
        return True
    drops = query(audit_dir, event=DROP_EVENT)
    return dropped_start_vouched(drops, seq, prev.decode("ascii", "replace"))


def dropped_start_vouched(records: list[dict[str, Any]], start_seq: int, start_prev: str) -> bool:
    """Whether an authenticated drop record accounts for a log that starts at *start_seq*
    (with *start_prev*) instead of 1: it names ``start_seq - 1`` and that mac."""
    return any(
        r.get("last_seq") == start_seq - 1 and r.get("last_mac") == start_prev for r in records
    )


def _last_ts(path: Path, size: int) -> str:
    """The ``ts`` of the last line of the file of *size* bytes ("" if it has none
    readable). Unverified: it only ever keeps a file, and a kept file is verified before
    it is dropped. The line's start is looked for from the end, however long the line is
    (each rotated file ends with the record that crossed ``rotate_bytes``: a long one
    is as often an agent's)."""
    try:
        with path.open("rb") as handle:
            handle.seek(_last_line_start(handle, size))
            head = handle.read(SEQ_AT)
    except OSError:
        return ""
    if not head.startswith(HEAD):
        return ""
    return head[len(HEAD) : SEQ_AT].decode("ascii", "replace")


def _last_line_start(handle: BinaryIO, size: int) -> int:
    """Where the last line of the first *size* bytes starts (its newline aside)."""
    end, tail = size, True
    while end > 0:
        start = max(0, end - TAIL_BYTES)
        handle.seek(start)
        block = handle.read(end - start)
        if tail:  # the last line's own newline is not the one before it
            block = block.rstrip(b"\n")
            tail = not block
        cut = block.rfind(b"\n")
        if cut != -1:
            return start + cut + 1
        end = start
    return 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
