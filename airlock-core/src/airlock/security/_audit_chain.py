"""The audit line layout and the hot loop of ``audit verify`` (stdlib only).

Every line the writer produces has the same frame::

    {"ts":"<24 chars>","seq":<n>,"event":...,"prev":"<64 hex>","mac":"<64 hex>"}\\n

so the canonical body (the line without ``,"mac":"..."``), the claimed ``prev`` and the
``mac`` sit at fixed offsets from the ends of the line. :func:`check_file` uses that to
check a record with a few byte comparisons and one HMAC instead of parsing JSON, which
is what keeps a million records to a few seconds. It imports nothing heavy, so
``verify`` can run it in worker processes, one file each, and stitch the results.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

GENESIS = "0" * 64
TS_LEN = 24  # 2026-01-26T15:30:00.123Z
HEAD = b'{"ts":"'
SEQ_AT = len(HEAD) + TS_LEN  # where '","seq":' starts
SEQ_MARK = b'","seq":'
MAC_MARK = b',"mac":"'
PREV_MARK = b',"prev":"'
END = b'"}\n'
MAC_TAIL = len(MAC_MARK) + 64 + len(END)  # bytes after the body's closing quote of prev
PREV_TAIL = MAC_TAIL + 1 + 64 + len(PREV_MARK)
_TAIL_MARK = b'"' + MAC_MARK  # closes prev, opens mac
_MAC_AT = -MAC_TAIL + len(MAC_MARK)
_PREV_AT = -PREV_TAIL + len(PREV_MARK)
_QUOTE_AT = -MAC_TAIL - 1
MAX_REPORTED_LINE = 65536


class Mac:
    """HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once.

    The same output as ``hmac.digest(key, msg, "sha256")``; copying two prepared hash
    states per record is cheaper than keying afresh each time.
    """

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def of(self, prev: bytes, body: bytes) -> bytes:
        """The mac of a record: over the raw previous mac, then its canonical body."""
        inner = self._inner.copy()
        inner.update(prev)
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def framed(line: bytes) -> bool:
    """Whether *line* has the frame the writer produces (not whether it is authentic)."""
    return (
        line.startswith(HEAD)
        and line[SEQ_AT : SEQ_AT + len(SEQ_MARK)] == SEQ_MARK
        and line.endswith(END)
        and line[_QUOTE_AT:_MAC_AT] == _TAIL_MARK
        and line[-PREV_TAIL:_PREV_AT] == PREV_MARK
    )


def body_of(line: bytes) -> bytes:
    """The canonical body of a framed line: itself without ``,"mac":"..."``."""
    return line[:-MAC_TAIL] + b"}"


def prev_of(line: bytes) -> bytes:
    return line[_PREV_AT:_QUOTE_AT]


def mac_of(line: bytes) -> bytes:
    return line[_MAC_AT:-3]


def seq_of(line: bytes) -> int | None:
    digits = SEQ_AT + len(SEQ_MARK)
    try:
        return int(line[digits : line.index(b",", digits)])
    except ValueError:
        return None


@dataclass(frozen=True)
class FileCheck:
    """What :func:`check_file` found: where the file's chain starts, ends or breaks."""

    path: str
    start_seq: int  # the seq the check started from (line 1 should carry it)
    start_prev: bytes  # the prev hex line 1 should carry
    good: int  # records that passed, from line 1
    last_mac: bytes  # hex mac of the last good record (start_prev if none)
    bad_line: int | None = None  # 1-based number of the first bad line
    bad_text: bytes = b""  # that line, cut to MAX_REPORTED_LINE bytes


def claimed_start(path: str) -> tuple[int, bytes] | None:
    """The (seq, prev hex) line 1 of *path* claims, if it is framed; None otherwise.

    Line 1 is read whole, however long (a record holding an agent's long parameters is
    framed too): cut, it would read as unframed, a file that does not verify."""
    with open(path, "rb") as handle:
        first = handle.readline()
    if not framed(first):
        return None
    seq = seq_of(first)
    return None if seq is None else (seq, prev_of(first))


def check_file(
    path: str, key: bytes, start_seq: int | None = None, start_prev: bytes | None = None
) -> FileCheck:
    """Check every record of one file, from the given start or, if None, line 1's claim.

    Stops at the first line that is not exactly the next record of the chain: framed,
    carrying the expected ``seq`` and ``prev``, with a valid mac.
    """
    if start_seq is None or start_prev is None:
        claim = claimed_start(path)
        if claim is None:
            with open(path, "rb") as handle:
                first = handle.readline(MAX_REPORTED_LINE)
            if not first:
                return FileCheck(path, 0, b"", 0, b"")
            return FileCheck(path, 0, b"", 0, b"", 1, first)
        start_seq, start_prev = claim
    mac = Mac(key)
    of, compare = mac.of, hmac.compare_digest
    expected, prev_hex = start_seq, start_prev
    try:
        prev_raw = bytes.fromhex(prev_hex.decode("ascii"))
    except ValueError:
        prev_raw = b""
    number = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not (
                line.startswith(b'","seq":%d,"' % expected, SEQ_AT)
                and line.endswith(END)
                and line[_QUOTE_AT:_MAC_AT] == _TAIL_MARK
                and line[-PREV_TAIL:_PREV_AT] == PREV_MARK
                and line[_PREV_AT:_QUOTE_AT] == prev_hex
                and line.startswith(HEAD)
            ):
                return _broken(path, start_seq, start_prev, number, line, prev_hex)
            digest = of(prev_raw, line[:-MAC_TAIL] + b"}")
            claimed = line[_MAC_AT:-3]
            if not compare(digest.hex().encode(), claimed):
                return _broken(path, start_seq, start_prev, number, line, prev_hex)
            prev_hex, prev_raw = claimed, digest
            expected += 1
    return FileCheck(path, start_seq, start_prev, expected - start_seq, prev_hex)


def _broken(
    path: str, start_seq: int, start_prev: bytes, number: int, line: bytes, prev_hex: bytes
) -> FileCheck:
    return FileCheck(
        path, start_seq, start_prev, number - 1, prev_hex, number, line[:MAX_REPORTED_LINE]
    )
