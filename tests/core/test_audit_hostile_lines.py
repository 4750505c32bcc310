"""Lines in the audit files that Airlock never wrote: whoever can write the files (a
restored backup, a program of the person's uid in personal mode) must not be able to make
the tools that check and show the log crash instead of naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.common.clock import FakeClock
from airlock.errors import AuditError
from airlock.security.audit import AuditLog, query, verify

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
