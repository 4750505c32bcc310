"""The dashboard's audit export is read and written a part at a time: however many
records (up to its limit of 100,000), the daemon holds a few blocks of the log, not the
export (built whole, the JSON lines export of 50,000 records held 118 MB at its peak,
of 100,000 235 MB; now ~31 MB either way), whichever format; and the parts together
are the whole export, newest first, nothing lost or doubled at their seams."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from airlock.dashboard.audit_view import Filters, export_parts
from airlock.security.audit import CURRENT_NAME, GENESIS, encode_record, format_ts

KEY = b"k" * 32
RECORDS = 50_000
HELD = 48_000_000
"""Bytes an export may hold at once: four of the log's largest blocks (4 MiB) parsed,
and a part (1,000 records), with room to spare."""


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RECORDS operation records, as the daemon writes them (~580 bytes each)."""
    folder = tmp_path_factory.mktemp("audit")
    prev = GENESIS
    with open(folder / CURRENT_NAME, "wb") as out:
        for seq in range(1, RECORDS + 1):
            fields = {"service": "mail", "op": "search", "text": f"note {seq} " + "x" * 300}
            line, prev = encode_record(
                KEY,
                seq=seq,
                ts=format_ts(1_800_000_000 + seq),
                event="operation",
                fields=fields,
                prev=prev,
            )
            out.write(line)
    return folder


def _jsonl_seqs(part: str) -> list[int]:
    return [json.loads(line)["seq"] for line in part.splitlines()]


def _csv_seqs(part: str) -> list[int]:
    return [int(row[0]) for row in csv.reader(io.StringIO(part)) if row[0] != "seq"]


@pytest.mark.parametrize(("kind", "seqs"), [("jsonl", _jsonl_seqs), ("csv", _csv_seqs)])
def test_an_export_holds_a_part_at_a_time_and_gives_every_record_once(
    big_log: Path, kind: str, seqs: Callable[[str], list[int]]
) -> None:
    expected = RECORDS  # newest first: the next seq each part must go on from
    total = peak = 0
    tracemalloc.start()
    try:
        for part in export_parts(big_log, Filters(), kind):
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            total += len(part)
            got = seqs(part)
            assert got == list(range(expected, expected - len(got), -1))
            expected -= len(got)
    finally:
        tracemalloc.stop()
    assert expected == 0, "every record, once"
    assert total > 28_000_000
    assert peak < HELD, f"held {peak:,} bytes at once for a {total:,}-byte export"
