"""Lines in the audit files that Airlock never wrote: whoever can write the files (a
restored backup, a program of the person's uid in personal mode) must not be able to make
the tools that check and show the log crash instead of naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlock.api import AuditEvents
from airlock.common.clock import FakeClock
from airlock.errors import AuditError
from airlock.security.audit import AuditLog, query, shallow, verify

KEY = bytes(range(32))
DEEP = b"[" * 30_000 + b"]" * 30_000 + b"\n"  # valid JSON, nested past any parser's depth


@pytest.fixture
def written(tmp_path: Path) -> Path:
    audit_dir = tmp_path / "audit"
    with AuditLog(audit_dir, KEY, clock=FakeClock()) as log:
        for n in range(5):
            log.append_sync("operation", service="gmail", n=n)
    return audit_dir


def _replace_line(audit_dir: Path, index: int, line: bytes) -> Path:
    current = audit_dir / "audit.jsonl"
    lines = current.read_bytes().splitlines(keepends=True)
    lines[index] = line
    current.write_bytes(b"".join(lines))
    return current


def test_verify_names_a_deeply_nested_line_instead_of_crashing(written: Path) -> None:
    current = _replace_line(written, 2, DEEP)
    result = verify(written, KEY)
    assert not result.ok
    assert result.problem is not None
    assert (result.problem.file, result.problem.line) == (current, 3)
    assert result.records == 2


def test_a_query_skips_a_deeply_nested_line(written: Path) -> None:
    _replace_line(written, 2, DEEP)
    assert [r["n"] for r in query(written)] == [0, 1, 3, 4]
    assert [r["n"] for r in query(written, newest_first=True)] == [4, 3, 1, 0]
    assert [r["n"] for r in query(written, service="gmail")] == [0, 1, 3, 4]


def test_a_writer_refuses_a_log_whose_first_line_is_deeply_nested(written: Path) -> None:
    _replace_line(written, 0, DEEP)
    with AuditLog(written, KEY, clock=FakeClock()) as log, pytest.raises(AuditError):
        log.append_sync("daemon_started")


@pytest.mark.parametrize(
    "planted",
    [
        b'{"event":"operation","service":"gmail","n":9}\n',  # no seq, no ts
        b'{"seq":"3","ts":"2026-01-01T00:00:00Z","service":"gmail","n":9}\n',
        b'{"seq":true,"ts":"2026-01-01T00:00:00Z","service":"gmail","n":9}\n',
        b'{"seq":3,"ts":7,"service":"gmail","n":9}\n',
    ],
)
def test_a_query_skips_a_record_airlock_would_never_write(written: Path, planted: bytes) -> None:
    _replace_line(written, 2, planted)
    assert [r["n"] for r in query(written)] == [0, 1, 3, 4]
    assert [r["n"] for r in query(written, newest_first=True, limit=3)] == [4, 3, 1]
    assert not verify(written, KEY).ok, "verify still names it"


def test_a_record_nested_past_json_output_is_left_out_of_a_listing(written: Path) -> None:
    """It parses, but JSON output stops at ~250 levels: ``GET /v1/audit`` was a 500."""
    deep = b'{"seq":3,"ts":"2026-01-01T00:00:00Z","n":9,"x":' + b"[" * 300 + b"]" * 300 + b"}\n"
    _replace_line(written, 2, deep)
    listed = query(written)
    assert [r["n"] for r in listed] == [0, 1, 9, 3, 4]
    assert [r["n"] for r in shallow(listed)] == [0, 1, 3, 4]
    assert json.loads(AuditEvents(events=shallow(listed)).model_dump_json())["events"]
