"""The audit directory's size budget: old rotated files go, each drop recorded first, and
`audit verify` still covers what is kept; unverified history is never dropped."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from gateway_fixtures import Phone
from test_approvals import run, settle

from airlock.common.clock import FakeClock
from airlock.daemon.audit_budget import keep_audit_budget
from airlock.daemon.runtime import Runtime
from airlock.security.audit import AuditLog, verify_dir
from airlock.settings.config import AirlockConfig

ROTATE = 4096
DAY = 86400


def _fill(log: AuditLog, records: int) -> None:
    for n in range(records):
        log.append_sync("operation", n=n, padding="x" * 200)


def _sizes(audit_dir: Path) -> int:
    return sum(p.stat().st_size for p in audit_dir.glob("audit*.jsonl"))


def test_old_files_over_the_budget_are_dropped_with_a_record_and_the_rest_verifies(
    tmp_path: Path,
) -> None:
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    log = AuditLog(audit_dir, key, rotate_bytes=ROTATE)
    _fill(log, 120)
    assert _sizes(audit_dir) > 4 * ROTATE
    dropped = asyncio.run(log.drop_over_budget(3 * ROTATE))
    assert dropped, "something was over the budget"
    assert _sizes(audit_dir) <= 4 * ROTATE, "within the budget plus the drop record"
    records = [
        json.loads(line)
        for line in (audit_dir / "audit.jsonl").read_text().splitlines()
        if '"audit_files_dropped"' in line
    ]
    assert [r["file"] for r in records] == dropped
    result = verify_dir(audit_dir, key)
    assert result.ok, result.problem
    assert result.last_seq == log.last_seq
    assert not (audit_dir / dropped[0]).exists()
    log.close()


def test_deleting_old_files_without_a_drop_record_is_reported_by_verify(tmp_path: Path) -> None:
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    log = AuditLog(audit_dir, key, rotate_bytes=ROTATE)
    _fill(log, 60)
    log.close()
    oldest = sorted(audit_dir.glob("audit-*.jsonl"))[0]
    oldest.unlink()
    result = verify_dir(audit_dir, key)
    assert not result.ok
    assert result.problem is not None
    assert "no audit_files_dropped record accounts for them" in result.problem.reason


def test_the_budget_does_not_cover_up_old_files_deleted_without_a_record(tmp_path: Path) -> None:
    """The oldest file deleted behind the daemon's back: dropping the next one under the
    budget would leave a log whose every gap has a drop record, and verify would pass."""
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    log = AuditLog(audit_dir, key, rotate_bytes=ROTATE)
    _fill(log, 120)
    rotated = sorted(audit_dir.glob("audit-*.jsonl"))
    rotated[0].unlink()
    assert asyncio.run(log.drop_over_budget(3 * ROTATE)) == []
    assert rotated[1].exists(), "the file that shows the gap stays"
    refused = [
        json.loads(line)
        for line in (audit_dir / "audit.jsonl").read_text().splitlines()
        if '"audit_drop_refused"' in line
    ]
    assert "no audit_files_dropped record accounts for them" in refused[0]["why"]
    result = verify_dir(audit_dir, key)
    assert not result.ok
    assert result.problem is not None
    assert "no audit_files_dropped record accounts for them" in result.problem.reason
    log.close()


def test_files_dropped_in_turn_keep_a_log_that_verifies(tmp_path: Path) -> None:
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    log = AuditLog(audit_dir, key, rotate_bytes=ROTATE)
    dropped: list[str] = []
    for _ in range(4):
        _fill(log, 60)
        dropped += asyncio.run(log.drop_over_budget(4 * ROTATE))
    assert len(dropped) > 4, "later drops start from what an earlier drop vouched for"
    result = verify_dir(audit_dir, key)
    assert result.ok, result.problem
    log.close()


def test_a_file_that_does_not_verify_is_kept_over_the_budget(tmp_path: Path) -> None:
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    log = AuditLog(audit_dir, key, rotate_bytes=ROTATE)
    _fill(log, 120)
    oldest = sorted(audit_dir.glob("audit-*.jsonl"))[0]
    oldest.write_text(oldest.read_text().replace('"n":3,', '"n":4,'))
    assert asyncio.run(log.drop_over_budget(ROTATE)) == []
    assert oldest.exists()
    refused = [
        json.loads(line)
        for line in (audit_dir / "audit.jsonl").read_text().splitlines()
        if '"audit_drop_refused"' in line
    ]
    assert refused[0]["why"] == f"{oldest.name} does not verify"
    log.close()


def test_the_budget_must_leave_room_for_rotation() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_bytes"):
        AirlockConfig(audit={"rotate_bytes": 1 << 20, "max_bytes": 1 << 20})


def test_files_with_records_younger_than_keep_for_stay_over_the_budget(tmp_path: Path) -> None:
    """Whoever can make records fast (an agent with a session) must not push its own
    recent ones out: a file holding a record from the last ``keep_for`` is kept, the
    refusal is recorded once, and the file goes once its records are old enough."""
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    clock = FakeClock()
    log = AuditLog(audit_dir, key, rotate_bytes=ROTATE, clock=clock)
    _fill(log, 120)
    clock.advance(DAY - 1)
    assert asyncio.run(log.drop_over_budget(3 * ROTATE, keep_for=DAY)) == []
    assert asyncio.run(log.drop_over_budget(3 * ROTATE, keep_for=DAY)) == []
    oldest = sorted(audit_dir.glob("audit-*.jsonl"))[0].name
    assert log.drop_refused == f"{oldest} holds records younger than keep_for"
    refused = log.query(event="audit_drop_refused")
    assert [r["why"] for r in refused] == [log.drop_refused], "recorded once"
    clock.advance(2)
    dropped = asyncio.run(log.drop_over_budget(3 * ROTATE, keep_for=DAY))
    assert dropped[0] == oldest
    assert log.drop_refused is None
    assert verify_dir(audit_dir, key).ok
    log.close()


def _long(log: AuditLog) -> None:
    """A record longer than 64 KiB: an agent's call with a long list among its
    parameters (an MCP tool's, say; each text is cut at 4,096 characters, not the list)."""
    log.append_sync("operation", params={"paths": ["p" * 4000] * 20})


def test_a_long_last_record_does_not_get_a_young_file_deleted(tmp_path: Path) -> None:
    """Each rotated file ends with the record that crossed rotate_bytes: an agent whose
    every other call is long makes that its own. The file's records are as young."""
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    log = AuditLog(audit_dir, key, rotate_bytes=ROTATE, clock=FakeClock())
    for _ in range(10):
        _fill(log, 1)
        _long(log)
    assert asyncio.run(log.drop_over_budget(4 * ROTATE, keep_for=DAY)) == []
    assert log.drop_refused is not None
    assert log.drop_refused.endswith("holds records younger than keep_for")
    log.close()


def test_files_that_begin_with_a_long_record_go_once_old_and_the_rest_verifies(
    tmp_path: Path,
) -> None:
    """A file whose first record is long is read whole: it verifies, goes once old
    enough, and ``audit verify`` starts the chain kept from it."""
    audit_dir, key = tmp_path / "audit", tmp_path / "audit.key"
    audit_dir.mkdir()
    clock = FakeClock()
    log = AuditLog(audit_dir, key, rotate_bytes=ROTATE, clock=clock)
    for _ in range(10):
        _long(log)
    clock.advance(DAY + 1)
    dropped = asyncio.run(log.drop_over_budget(4 * ROTATE, keep_for=DAY))
    assert dropped, log.drop_refused
    result = verify_dir(audit_dir, key)
    assert result.ok, result.problem
    log.close()


def test_the_person_is_told_on_every_channel_of_a_drop_and_of_a_refusal(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        _fill(runtime.audit, 120)
        await keep_audit_budget(runtime)  # every record is from now: nothing may go
        await settle()
        (refusal,) = phone.notices
        assert "over its size budget (audit.max_bytes, 16,384 bytes)" in refusal
        assert "holds records younger than keep_for" in refusal
        await keep_audit_budget(runtime)  # the same reason is not told twice
        await settle()
        assert len(phone.notices) == 1
        clock.advance(DAY + 1)
        await keep_audit_budget(runtime)
        await settle()
        assert "oldest file(s) were verified and deleted" in phone.notices[-1]
        assert runtime.audit.query(event="audit_files_dropped")

    run(
        tmp_path,
        scenario,
        audit={"rotate_bytes": ROTATE, "max_bytes": 4 * ROTATE, "keep_for": "1d"},
    )


def test_a_flood_ageing_out_file_by_file_does_not_flood_the_persons_phone(
    tmp_path: Path,
) -> None:
    """An agent made records fast for twelve minutes; a keep_for later its files come of
    age one by one, and each housekeeping round (every 5 s) deletes one and finds the
    next too young. The person hears of the deletions and of the refusal once each within
    the hour, then of what was deleted since, counted: not of every file."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        for _ in range(12):
            _fill(runtime.audit, 20)
            clock.advance(60)
        clock.advance(DAY - 12 * 60 + 1)
        for _ in range(12 * 12):
            await keep_audit_budget(runtime)
            clock.advance(5)
        await settle()
        dropped = runtime.audit.query(event="audit_files_dropped")
        assert len(dropped) > 5, "the flood's files went one round after another"
        assert len(phone.notices) == 2, phone.notices
        first = re.search(r"its (\d+) oldest file\(s\) were verified and deleted", phone.notices[0])
        assert first is not None, phone.notices[0]
        assert "holds records younger than keep_for" in phone.notices[1]
        clock.advance(3600)
        await keep_audit_budget(runtime)
        await settle()
        assert len(phone.notices) == 3
        assert f"{len(dropped) - int(first.group(1))} more file(s)" in phone.notices[2]

    run(
        tmp_path,
        scenario,
        audit={"rotate_bytes": ROTATE, "max_bytes": 4 * ROTATE, "keep_for": "1d"},
    )


@pytest.mark.parametrize(
    "lives",
    [
        {"sessions": {"max_ttl": "8h"}, "dashboard": {"session_ttl": "1h"}},
        {"sessions": {"max_ttl": "1h"}, "dashboard": {"session_ttl": "8h"}},
    ],
)
def test_records_a_live_session_may_need_stay_though_keep_for_is_shorter(
    tmp_path: Path, lives: dict[str, Any]
) -> None:
    """A ``keep_for`` shorter than a session's (or dashboard login's) longest life: a
    flood must not push out the revocation record of a session still live, which a start
    after a crash replays (the database may not show it)."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        _fill(runtime.audit, 120)
        clock.advance(2 * 3600)  # past keep_for, within the session's life
        await keep_audit_budget(runtime)
        assert runtime.audit.query(event="audit_files_dropped") == []
        assert runtime.audit.drop_refused is not None
        assert runtime.audit.drop_refused.endswith("holds records younger than keep_for")
        clock.advance(6 * 3600 + 1)  # past the longest life
        await keep_audit_budget(runtime)
        assert runtime.audit.query(event="audit_files_dropped")

    run(
        tmp_path,
        scenario,
        audit={"rotate_bytes": ROTATE, "max_bytes": 4 * ROTATE, "keep_for": "1h"},
        **lives,
    )
