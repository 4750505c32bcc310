"""Records cut off the end of the audit log: a hash chain alone cannot show it, so the
writer that knows how far it wrote refuses to continue on a cut log (fail closed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.errors import AuditError
from airlock.security.audit import AuditLog, verify_dir


def test_a_writer_refuses_to_chain_onto_a_log_cut_behind_its_back(tmp_path: Path) -> None:
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    log = AuditLog(audit_dir, key)
    for n in range(5):
        log.append_sync("operation", n=n)
    assert log.last_seq == 5
    current = audit_dir / "audit.jsonl"
    lines = current.read_text().splitlines(keepends=True)
    current.write_text("".join(lines[:3]))
    assert verify_dir(audit_dir, key).ok, "the cut file still verifies on its own"
    with pytest.raises(AuditError, match="records after seq 3 are gone"):
        log.append_sync("operation", n=5)
    assert len(current.read_text().splitlines()) == 3, "nothing was chained onto the cut"
    log.close()


def test_a_new_writer_continues_a_log_it_did_not_write(tmp_path: Path) -> None:
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    with AuditLog(audit_dir, key) as first:
        first.append_sync("daemon_started")
    with AuditLog(audit_dir, key) as second:
        record = second.append_sync("daemon_started")
    assert record.seq == 2
    assert verify_dir(audit_dir, key).ok


def test_a_forged_tail_with_a_higher_seq_cannot_hide_a_cut(tmp_path: Path) -> None:
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    log = AuditLog(audit_dir, key)
    for n in range(5):
        log.append_sync("operation", n=n)
    current = audit_dir / "audit.jsonl"
    lines = current.read_text().splitlines(keepends=True)
    # Cut the last two records and put a made-up one claiming seq 9 in their place.
    forged = lines[2].replace('"seq":3,', '"seq":9,')
    forged = forged[: forged.index(',"mac":"')] + ',"mac":"' + "ab" * 32 + '"}\n'
    current.write_text("".join([*lines[:3], forged]))
    with pytest.raises(AuditError, match="does not verify with the daemon's key"):
        log.append_sync("operation", n=5)
    assert current.read_text().splitlines()[-1] == forged.strip(), "nothing chained onto it"
    log.close()
