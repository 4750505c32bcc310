"""The audit log: a keyed hash chain that names the first tampered line, and fails closed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from airlock.common.clock import FakeClock
from airlock.errors import AuditError
from airlock.security import audit as audit_module
from airlock.security._audit_format import log_files
from airlock.security.audit import (
    CURRENT_NAME,
    GENESIS,
    AuditLog,
    format_ts,
    load_or_create_key,
    query,
    scrub,
    verify,
    verify_dir,
)

KEY = bytes(range(32))
DAY0 = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit"


@pytest.fixture
def log(audit_dir: Path, clock: FakeClock) -> Iterator[AuditLog]:
    with AuditLog(audit_dir, KEY, clock=clock) as opened:
        yield opened


def write_events(log: AuditLog, clock: FakeClock, count: int, step: float = 1.0) -> None:
    for n in range(count):
        log.append_sync("operation", service="gmail", op="list_messages", n=n)
        clock.advance(step)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rotated_files(audit_dir: Path) -> list[Path]:
    return sorted(audit_dir.glob("audit-*.jsonl"))


# --- format and chain -----------------------------------------------------------------------


def test_records_follow_the_documented_format_and_chain(log: AuditLog, clock: FakeClock) -> None:
    clock.set(DAY0.timestamp() + 0.123)
    log.append_sync("session_issued", session="ses_1", uid=1000, services=["gmail"])
    log.append_sync("operation", service="gmail", params={"b": 1, "a": [2, {"z": 0, "y": 1}]})
    prev = GENESIS
    for seq, line in enumerate(lines_of(log.current_path), start=1):
        record = json.loads(line)
        assert list(record)[:3] == ["ts", "seq", "event"]
        assert list(record)[-2:] == ["prev", "mac"]
        assert record["ts"] == "2027-03-01T00:00:00.123Z"
        assert record["seq"] == seq
        assert record["prev"] == prev
        mac = record.pop("mac")
        fields = {k: v for k, v in record.items() if k not in ("ts", "seq", "event", "prev")}
        canonical = (
            f'{{"ts":"{record["ts"]}","seq":{seq},"event":"{record["event"]}"'
            + "".join(
                "," + json.dumps({k: v}, sort_keys=True, separators=(",", ":"))[1:-1]
                for k, v in sorted(fields.items())
            )
            + f',"prev":"{prev}"}}'
        )
        expected = hmac.new(KEY, bytes.fromhex(prev) + canonical.encode(), hashlib.sha256)
        assert mac == expected.hexdigest()
        prev = mac


def test_an_untouched_log_verifies(log: AuditLog, clock: FakeClock, audit_dir: Path) -> None:
    write_events(log, clock, 50)
    result = verify(audit_dir, KEY)
    assert result.ok, result.problem
    assert result.records == 50
    assert result.last_seq == 50


def test_an_empty_or_missing_log_verifies(tmp_path: Path) -> None:
    result = verify(tmp_path / "nothing", KEY)
    assert result.ok
    assert result.records == 0


def test_the_key_and_the_log_are_private(log: AuditLog, audit_dir: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "audit.key"
    key = load_or_create_key(key_file)
    assert len(key) == 32
    assert load_or_create_key(key_file) == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    log.append_sync("daemon_started")
    assert stat.S_IMODE(log.current_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(audit_dir.stat().st_mode) == 0o700


def test_a_log_opened_with_a_key_file_creates_the_key(audit_dir: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "audit.key"
    with AuditLog(audit_dir, key_file) as log:
        log.append_sync("daemon_started")
    assert verify_dir(audit_dir, key_file).ok


def test_a_log_whose_key_is_gone_gets_no_new_key(audit_dir: Path, tmp_path: Path) -> None:
    """A new key would make every record look edited and lose what really happened."""
    key_file = tmp_path / "data" / "audit.key"
    with AuditLog(audit_dir, key_file) as log:
        log.append_sync("daemon_started")
    key_file.unlink()
    with pytest.raises(AuditError, match="no audit key") as refused:
        AuditLog(audit_dir, key_file)
    assert "restore" in (refused.value.hint or "")
    assert not key_file.exists()
    with pytest.raises(AuditError, match="no audit key"):
        verify_dir(audit_dir, key_file)


def test_verifying_without_the_key_file_says_so(log: AuditLog, tmp_path: Path) -> None:
    assert verify_dir(log.audit_dir, tmp_path / "missing.key").ok  # fresh: nothing to check
    log.append_sync("daemon_started")
    with pytest.raises(AuditError, match="no audit key"):
        verify_dir(log.audit_dir, tmp_path / "missing.key")


def test_a_log_checked_with_another_key_fails_at_line_one(
    log: AuditLog, clock: FakeClock, audit_dir: Path
) -> None:
    write_events(log, clock, 3)
    result = verify(audit_dir, b"\x01" * 32)
    assert result.problem is not None
    assert (result.problem.file, result.problem.line) == (log.current_path, 1)


# --- tampering ------------------------------------------------------------------------------


@pytest.fixture
def written(log: AuditLog, clock: FakeClock) -> Path:
    write_events(log, clock, 10)
    return log.current_path


def test_an_edited_record_is_named(written: Path, audit_dir: Path) -> None:
    lines = lines_of(written)
    lines[4] = lines[4].replace(b'"n":4', b'"n":5')
    written.write_bytes(b"".join(lines))
    problem = verify(audit_dir, KEY).problem
    assert problem is not None
    assert (problem.file, problem.line) == (written, 5)
    assert "changed" in problem.reason


def test_an_edit_that_keeps_valid_json_but_changes_spacing_is_named(
    written: Path, audit_dir: Path
) -> None:
    lines = lines_of(written)
    lines[2] = lines[2].replace(b'"service":"gmail"', b'"service": "gmail"')
    written.write_bytes(b"".join(lines))
    problem = verify(audit_dir, KEY).problem
    assert problem is not None
    assert problem.line == 3


def test_a_deleted_record_is_named(written: Path, audit_dir: Path) -> None:
    lines = lines_of(written)
    del lines[6]
    written.write_bytes(b"".join(lines))
    problem = verify(audit_dir, KEY).problem
    assert problem is not None
    assert (problem.file, problem.line) == (written, 7)
    assert "record 7 is missing" in problem.reason


def test_reordered_records_are_named(written: Path, audit_dir: Path) -> None:
    lines = lines_of(written)
    lines[3], lines[4] = lines[4], lines[3]
    written.write_bytes(b"".join(lines))
    problem = verify(audit_dir, KEY).problem
    assert problem is not None
    assert problem.line == 4
    assert "expected seq 4, found 5" in problem.reason


def test_a_record_cut_short_in_the_middle_is_named(written: Path, audit_dir: Path) -> None:
    lines = lines_of(written)
    lines[5] = lines[5][:40] + b"\n"
    written.write_bytes(b"".join(lines))
    problem = verify(audit_dir, KEY).problem
    assert problem is not None
    assert problem.line == 6
    assert "not a JSON record" in problem.reason


def test_a_file_cut_in_the_middle_of_a_line_is_named(written: Path, audit_dir: Path) -> None:
    data = written.read_bytes()
    written.write_bytes(data[: len(data) - 50])
    problem = verify(audit_dir, KEY).problem
    assert problem is not None
    assert problem.line == 10
    assert "cut short" in problem.reason


def test_a_record_forged_without_the_key_is_named(written: Path, audit_dir: Path) -> None:
    last = json.loads(lines_of(written)[-1])
    body = (
        f'{{"ts":"{last["ts"]}","seq":11,"event":"operation","n":99,'
        f'"op":"send","service":"gmail","prev":"{last["mac"]}"}}'
    )
    mac = hmac.new(b"\x02" * 32, bytes.fromhex(last["mac"]) + body.encode(), hashlib.sha256)
    with open(written, "ab") as handle:
        handle.write(body[:-1].encode() + f',"mac":"{mac.hexdigest()}"}}\n'.encode())
    problem = verify(audit_dir, KEY).problem
    assert problem is not None
    assert problem.line == 11


def test_a_record_spliced_in_from_another_chain_is_named(
    written: Path, audit_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    other_dir = tmp_path / "other"
    with AuditLog(other_dir, KEY, clock=clock) as other:
        write_events(other, clock, 10)
    lines = lines_of(written)
    lines[8] = lines_of(other_dir / CURRENT_NAME)[8]
    written.write_bytes(b"".join(lines))
    problem = verify(audit_dir, KEY).problem
    assert problem is not None
    assert problem.line == 9
    assert "chain broken" in problem.reason


# --- rotation -------------------------------------------------------------------------------


@pytest.fixture
def rotating(audit_dir: Path, clock: FakeClock) -> Iterator[AuditLog]:
    with AuditLog(audit_dir, KEY, clock=clock, rotate_bytes=4096) as opened:
        yield opened


@pytest.mark.parametrize("workers", [1, 2])
def test_full_files_rotate_and_the_chain_continues(
    rotating: AuditLog, clock: FakeClock, audit_dir: Path, workers: int
) -> None:
    write_events(rotating, clock, 120)
    rotated = rotated_files(audit_dir)
    assert len(rotated) >= 3
    first = json.loads(lines_of(rotated[0])[0])
    assert (
        rotated[0].name
        == f"audit-{first['ts'].replace('-', '').replace(':', '')}-000000000001.jsonl"
    )
    for older, newer in zip(rotated, [*rotated[1:], audit_dir / CURRENT_NAME], strict=True):
        last = json.loads(lines_of(older)[-1])
        following = json.loads(lines_of(newer)[0])
        assert following["prev"] == last["mac"]
        assert following["seq"] == last["seq"] + 1
    result = verify(audit_dir, KEY, workers=workers)
    assert result.ok, result.problem
    assert result.records == 120


@pytest.mark.parametrize("workers", [1, 2])
def test_an_edit_in_a_rotated_file_is_named_with_that_file(
    rotating: AuditLog, clock: FakeClock, audit_dir: Path, workers: int
) -> None:
    write_events(rotating, clock, 120)
    target = rotated_files(audit_dir)[1]
    lines = lines_of(target)
    lines[2] = lines[2].replace(b"list_messages", b"send_messages")
    target.write_bytes(b"".join(lines))
    problem = verify(audit_dir, KEY, workers=workers).problem
    assert problem is not None
    assert (problem.file, problem.line) == (target, 3)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_deleted_rotated_file_is_named_at_the_next_file(
    rotating: AuditLog, clock: FakeClock, audit_dir: Path, workers: int
) -> None:
    write_events(rotating, clock, 120)
    files = rotated_files(audit_dir)
    files[1].unlink()
    problem = verify(audit_dir, KEY, workers=workers).problem
    assert problem is not None
    assert (problem.file, problem.line) == (files[2], 1)
    assert "missing" in problem.reason


def test_a_new_writer_continues_the_chain_of_rotated_files(
    rotating: AuditLog, clock: FakeClock, audit_dir: Path
) -> None:
    write_events(rotating, clock, 120)
    rotating.close()
    (audit_dir / CURRENT_NAME).unlink(missing_ok=True)  # as if rotation had just happened
    with AuditLog(audit_dir, KEY, clock=clock, rotate_bytes=4096) as restarted:
        record = restarted.append_sync("daemon_started")
    assert verify(audit_dir, KEY).ok
    assert record.seq == verify(audit_dir, KEY).last_seq


def test_rotated_files_swapped_in_order_are_named(
    rotating: AuditLog, clock: FakeClock, audit_dir: Path
) -> None:
    write_events(rotating, clock, 120)
    files = rotated_files(audit_dir)
    one, two = files[1].read_bytes(), files[2].read_bytes()
    files[1].write_bytes(two)
    files[2].write_bytes(one)
    for workers in (1, 2):
        problem = verify(audit_dir, KEY, workers=workers).problem
        assert problem is not None
        assert (problem.file, problem.line) == (files[1], 1)


# --- durability and failure ---------------------------------------------------------------


def test_a_restarted_writer_continues_the_chain(
    log: AuditLog, clock: FakeClock, audit_dir: Path
) -> None:
    write_events(log, clock, 5)
    log.close()
    with AuditLog(audit_dir, KEY, clock=clock) as restarted:
        assert restarted.append_sync("daemon_started").seq == 6
    assert verify(audit_dir, KEY).ok


def test_a_partial_line_left_by_a_crash_is_cut_and_recorded(
    log: AuditLog, clock: FakeClock, audit_dir: Path
) -> None:
    write_events(log, clock, 5)
    log.close()
    with open(log.current_path, "ab") as handle:
        handle.write(b'{"ts":"2027-01-01T00:00:00.000Z","seq":6,"ev')
    with AuditLog(audit_dir, KEY, clock=clock) as restarted:
        record = restarted.append_sync("daemon_started")
    events = [r["event"] for r in query(audit_dir)]
    assert events[-2:] == ["audit_tail_repaired", "daemon_started"]
    assert record.seq == 7
    assert verify(audit_dir, KEY).ok


def test_a_log_file_replaced_by_a_directory_fails_closed(
    log: AuditLog, clock: FakeClock, audit_dir: Path
) -> None:
    write_events(log, clock, 3)
    aside = audit_dir / "moved-away"
    log.current_path.rename(aside)
    log.current_path.mkdir()
    with pytest.raises(AuditError, match="not written"):
        log.append_sync("operation", service="gmail")
    log.current_path.rmdir()
    aside.rename(log.current_path)
    assert log.append_sync("operation", service="gmail").seq == 4
    assert verify(audit_dir, KEY).ok


def test_a_log_whose_file_is_a_symlink_fails_closed(audit_dir: Path, tmp_path: Path) -> None:
    audit_dir.mkdir(parents=True)
    (audit_dir / CURRENT_NAME).symlink_to(tmp_path / "elsewhere.jsonl")
    with AuditLog(audit_dir, KEY) as log, pytest.raises(AuditError):
        log.append_sync("daemon_started")
    assert not (tmp_path / "elsewhere.jsonl").exists()


def test_coroutines_see_a_failed_write_as_audit_error(audit_dir: Path) -> None:
    audit_dir.mkdir(parents=True)
    (audit_dir / CURRENT_NAME).mkdir()

    async def main() -> None:
        with AuditLog(audit_dir, KEY) as log:
            results = await asyncio.gather(
                *(log.append("operation", n=n) for n in range(5)), return_exceptions=True
            )
        assert all(isinstance(r, AuditError) for r in results)

    asyncio.run(main())


_DISK_FULL = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    from pathlib import Path
    from airlock.security.audit import AuditLog
    from airlock.errors import AuditError

    audit_dir, key = Path(sys.argv[1]), bytes(range(32))
    log = AuditLog(audit_dir, key)
    for n in range(3):
        log.append_sync("operation", n=n)
    size = log.current_path.stat().st_size
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 300, size + 300))
    out = {"size": size}
    try:
        log.append_sync("operation", blob="x" * 2000)
        out["big"] = "written"
    except AuditError as exc:
        out["big"] = exc.message
    out["size_after_failure"] = log.current_path.stat().st_size
    out["small_seq"] = log.append_sync("operation", n=3).seq
    print(json.dumps(out))
    """
)


def test_a_write_the_disk_refuses_raises_and_does_not_advance_the_chain(
    audit_dir: Path,
) -> None:
    # RLIMIT_FSIZE makes write(2) fail with EFBIG part-way through the record: a real
    # short write followed by an error, as on a full disk.
    done = subprocess.run(
        [sys.executable, "-c", _DISK_FULL, str(audit_dir)],
        capture_output=True,
        check=True,
        text=True,
    )
    out = json.loads(done.stdout)
    assert out["big"].startswith("audit record not written")
    assert out["size_after_failure"] == out["size"]
    assert out["small_seq"] == 4
    result = verify(audit_dir, KEY)
    assert result.ok, result.problem
    assert result.records == 4


def test_bad_event_names_and_reserved_fields_are_refused_before_writing(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="event name"):
        log.append_sync('op","seq":99')
    with pytest.raises(ValueError, match="reserved"):
        log.append_sync("operation", mac="00")
    assert log.append_sync("operation").seq == 1


def test_time_never_goes_backwards_in_the_log(log: AuditLog, clock: FakeClock) -> None:
    first = log.append_sync("operation")
    clock.advance(-3600)
    second = log.append_sync("operation")
    assert second.ts == first.ts


# --- concurrency ---------------------------------------------------------------------------


def test_many_threads_appending_at_once_make_one_valid_chain(
    log: AuditLog, audit_dir: Path
) -> None:
    barrier = threading.Barrier(32)

    def writer(n: int) -> None:
        barrier.wait()
        for i in range(25):
            log.append_sync("operation", writer=n, i=i)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verify(audit_dir, KEY)
    assert result.ok, result.problem
    assert result.records == 800
    written = {(r["writer"], r["i"]) for r in query(audit_dir)}
    assert len(written) == 800


def test_a_writer_arriving_during_a_commit_is_not_kept_waiting_for_the_leader(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leading thread commits A's record while B queues; the next batch (B's) goes at
    once. Group commit waits only for writers still on their way, never for one whose
    record is written (here the leader itself): with a 60 s cap, such a wait would
    show."""
    monkeypatch.setattr(audit_module, "GROUP_WAIT", 60.0)
    queued = threading.Event()
    enqueue, commit = log._enqueue, log._file.commit

    def enqueue_and_say(pending: Any) -> bool:
        leads = enqueue(pending)
        queued.set()
        return leads

    def commit_after_b_queued(entries: Any) -> Any:
        if entries[0][0] == "a":
            b.start()
            assert queued.wait(10), "B never queued"
        return commit(entries)

    monkeypatch.setattr(log, "_enqueue", enqueue_and_say)
    monkeypatch.setattr(log._file, "commit", commit_after_b_queued)
    a = threading.Thread(target=log.append_sync, args=("a",))
    b = threading.Thread(target=log.append_sync, args=("b",))
    a.start()
    a.join(20)
    b.join(20)
    assert not a.is_alive(), "A's leader waited for itself"
    assert not b.is_alive()
    assert [r["event"] for r in query(log.audit_dir)] == ["a", "b"]


def test_many_coroutines_appending_at_once_make_one_valid_chain(
    log: AuditLog, audit_dir: Path
) -> None:
    async def main() -> list[int]:
        records = await asyncio.gather(*(log.append("operation", n=n) for n in range(500)))
        return sorted(r.seq for r in records)

    assert asyncio.run(main()) == list(range(1, 501))
    assert verify(audit_dir, KEY).ok


_OTHER_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from airlock.security.audit import AuditLog

    with AuditLog(Path(sys.argv[1]), bytes(range(32)), rotate_bytes=8192) as log:
        for n in range(50):
            log.append_sync("cli_event", n=n)
    """
)


def test_two_processes_appending_at_once_make_one_valid_chain(audit_dir: Path) -> None:
    with AuditLog(audit_dir, KEY, rotate_bytes=8192) as log:
        log.append_sync("daemon_started")
        child = subprocess.Popen([sys.executable, "-c", _OTHER_WRITER, str(audit_dir)])
        mine = 0
        while child.poll() is None and mine < 20_000:
            log.append_sync("daemon_event", n=mine)
            mine += 1
        assert child.wait() == 0
        log.append_sync("daemon_stopped")
    result = verify(audit_dir, KEY)
    assert result.ok, result.problem
    assert result.records == mine + 52
    events = [r["event"] for r in query(audit_dir)]
    first, last = events.index("cli_event"), len(events) - events[::-1].index("cli_event")
    assert "daemon_event" in events[first:last]  # they really did interleave


# --- query ----------------------------------------------------------------------------------


@pytest.fixture
def three_days(audit_dir: Path, clock: FakeClock) -> list[dict[str, object]]:
    """An event every 7 minutes for three days, in small rotated files."""
    clock.set(DAY0.timestamp())
    with AuditLog(audit_dir, KEY, clock=clock, rotate_bytes=8192) as log:
        n = 0
        while clock.now() < (DAY0 + timedelta(days=3)).timestamp():
            service = ("gmail", "calendar", "llm")[n % 3]
            log.append_sync("operation", service=service, n=n)
            if n % 50 == 0:
                log.append_sync("session_issued", services=["gmail", "llm"], n=n)
            n += 1
            clock.advance(7 * 60)
        clock.set((DAY0 + timedelta(days=1)).timestamp())  # exactly midnight, after a clock step
        log.append_sync("operation", service="gmail", n=-1)
    return query(audit_dir)


def test_a_query_by_day_returns_exactly_that_days_events(
    audit_dir: Path, three_days: list[dict[str, object]]
) -> None:
    day1, day2 = DAY0 + timedelta(days=1), DAY0 + timedelta(days=2)
    got = query(audit_dir, since=day1, until=day2)
    expected = [
        r
        for r in three_days
        if "2027-03-02T00:00:00.000Z" <= str(r["ts"]) < "2027-03-03T00:00:00.000Z"
    ]
    assert len(rotated_files(audit_dir)) > 10
    assert len(expected) > 200
    assert got == expected
    assert query(audit_dir, since=day1.timestamp(), until=day2.timestamp()) == expected


def test_a_query_since_a_time_returns_everything_after_it(
    audit_dir: Path, three_days: list[dict[str, object]]
) -> None:
    since = DAY0 + timedelta(days=2, hours=5, minutes=3)
    got = query(audit_dir, since=since)
    assert got == [r for r in three_days if str(r["ts"]) >= "2027-03-03T05:03:00.000Z"]


def test_a_query_filters_by_service_and_event(
    audit_dir: Path, three_days: list[dict[str, object]]
) -> None:
    llm = query(audit_dir, service="llm")
    assert llm == [
        r
        for r in three_days
        if r.get("service") == "llm" or "llm" in (r.get("services") or [])  # type: ignore[operator]
    ]
    issued = query(audit_dir, event="session_issued")
    assert issued
    assert all(r["event"] == "session_issued" for r in issued)


def test_a_query_limit_keeps_the_oldest_or_the_newest(
    audit_dir: Path, three_days: list[dict[str, object]]
) -> None:
    assert query(audit_dir, limit=5) == three_days[:5]
    assert query(audit_dir, limit=5, newest_first=True) == three_days[::-1][:5]
    day1 = DAY0 + timedelta(days=1)
    newest_of_day0 = query(audit_dir, until=day1, limit=3, newest_first=True)
    assert newest_of_day0 == [r for r in three_days if str(r["ts"]) < "2027-03-02"][::-1][:3]
    assert query(audit_dir, limit=0) == []


def test_a_query_of_an_empty_range_is_empty(
    audit_dir: Path, three_days: list[dict[str, object]]
) -> None:
    assert query(audit_dir, since=DAY0 + timedelta(days=30)) == []
    assert query(audit_dir, until=DAY0 - timedelta(days=1)) == []
    assert query(audit_dir / "missing") == []


def test_a_big_file_is_queried_in_blocks_both_ways(
    log: AuditLog, clock: FakeClock, audit_dir: Path
) -> None:
    clock.set(DAY0.timestamp())
    for n in range(1000):  # ~1.7 MB in one file: several read blocks each way
        log.append_sync("operation", service="gmail", n=n, padding="x" * 1500)
        clock.advance(60)
    everything = [json.loads(line) for line in lines_of(log.current_path)]
    since, until = DAY0 + timedelta(hours=3), DAY0 + timedelta(hours=14, minutes=30)
    inside = [
        r
        for r in everything
        if format_ts(since.timestamp()) <= r["ts"] < format_ts(until.timestamp())
    ]
    assert query(audit_dir, since=since, until=until) == inside
    assert query(audit_dir, since=since, until=until, newest_first=True) == inside[::-1]
    assert query(audit_dir, newest_first=True) == everything[::-1]
    assert query(audit_dir, event="operation", limit=7, newest_first=True) == everything[::-1][:7]


def test_a_query_skips_a_damaged_line_and_a_half_written_one(
    log: AuditLog, clock: FakeClock, audit_dir: Path
) -> None:
    write_events(log, clock, 10)
    lines = lines_of(log.current_path)
    lines[4] = b"garbage, not json\n"
    log.current_path.write_bytes(b"".join(lines) + b'{"ts":"2099-01-01T00:00:00.000Z","se')
    got = [r["n"] for r in query(audit_dir)]
    assert got == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert [r["n"] for r in query(audit_dir, newest_first=True)] == got[::-1]


# --- secrets stay out -------------------------------------------------------------------------


class Creds(BaseModel):
    username: str
    password: SecretStr


def test_parameters_are_scrubbed_of_secrets(log: AuditLog) -> None:
    token = "alk_" + "Ab3_-" * 8 + "xyz"
    log.append_sync(
        "operation",
        params={
            "password": "hunter2",
            "Authorization": "Bearer sk-abc",
            "nested": [{"api_key": "sk-or-1"}, {"note": f"use {token} please"}],
            "code": "123456",
            "totp_code": "654321",
            "claim": "clm_secret",
            "bot_token": "123:ABC",
            "client_secret": "shh",
            "header": "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
            "value": SecretStr("hidden"),
            "creds": Creds(username="me", password=SecretStr("pw")),
            "prompt_tokens": 12,
            "subject": "Your order",
        },
        token=token,
    )
    text = log.current_path.read_text()
    for secret in (
        "hunter2",
        "sk-abc",
        "sk-or-1",
        token,
        "123456",
        "654321",
        "clm_secret",
        "123:ABC",
        "shh",
        "eyJhbGciOiJIUzI1NiJ9",
        "hidden",
        '"pw"',
    ):
        assert secret not in text, secret
    params = json.loads(text)["params"]
    assert params["password"] == "[redacted]"
    assert params["nested"][1]["note"] == "use alk_[redacted] please"
    assert params["creds"]["username"] == "me"
    assert params["prompt_tokens"] == 12
    assert params["subject"] == "Your order"


def test_scrub_makes_any_value_loggable() -> None:
    cleaned = scrub(
        {"when": DAY0, "path": Path("/x"), "raw": b"\x00\x01", "nan": float("nan"), "obj": object()}
    )
    assert cleaned["when"] == "2027-03-01T00:00:00+00:00"
    assert cleaned["raw"] == "[2 bytes]"
    assert cleaned["nan"] == "nan"
    json.dumps(cleaned, allow_nan=False)


def test_huge_values_are_cut_down(log: AuditLog) -> None:
    log.append_sync("operation", body="x" * 100_000, items=list(range(5000)))
    record = query(log.audit_dir)[0]
    assert len(record["body"]) < 5000
    assert record["items"][-1] == "[+4000 more]"


def test_an_object_with_too_many_keys_is_cut_down_and_says_by_how_many(log: AuditLog) -> None:
    """The first thousand keys are kept, scrubbed like any others (the line sorts them)."""
    params = {f"k{n}": n for n in range(1005)}
    params["k3"] = "alk_" + "t" * 40
    log.append_sync("operation", params=params, small={"password": "p", "a": "b"})
    record = query(log.audit_dir)[0]
    kept = record["params"]
    assert set(kept) == {f"k{n}" for n in range(1000)} | {"[truncated]"}
    assert kept["[truncated]"] == "5 more keys"
    assert kept["k3"] == "alk_[redacted]"
    assert record["small"] == {"a": "b", "password": "[redacted]"}


def test_huge_field_names_are_cut_down_and_masked_like_values(log: AuditLog) -> None:
    # An MCP tool's arguments, say: the agent names the keys of a params object.
    token = "alk_" + "t" * 40
    log.append_sync("operation", params={"k" * 100_000: 1, token: 2})
    params = query(log.audit_dir)[0]["params"]
    assert all(len(name) < 5000 for name in params)
    assert token not in json.dumps(params)


def test_scrubbing_keeps_no_memory_of_huge_field_names() -> None:
    import gc
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(100):  # each a new name, as an agent can send them
            scrub({"params": {f"{n}" + "k" * 100_000: 1}})
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2_000_000, f"{held} bytes still held after scrubbing 10 MB of names"


def test_two_logs_are_independent_chains(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a", KEY) as one, AuditLog(tmp_path / "b", KEY) as two:
        one.append_sync("x")
        one.append_sync("x")
        two.append_sync("y")
    assert verify(tmp_path / "a", KEY).records == 2
    assert verify(tmp_path / "b", KEY).records == 1


def test_verifying_while_the_daemon_rotates_the_log_never_gives_a_false_verdict(
    tmp_path: Path,
) -> None:
    """`airlock audit verify` while a busy daemon rotates the log: the files it listed
    were renamed or replaced under it. Each answer is a true one (the log verifies) or a
    clean AuditError; before, a file renamed mid-check was a traceback and a rotated one
    left out a false 'sequence gap'."""
    audit_dir, key = tmp_path / "audit", b"k" * 32
    AuditLog(audit_dir, key).append_sync("operation", n=0)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from pathlib import Path
                from airlock.security.audit import AuditLog
                log = AuditLog(Path({str(audit_dir)!r}), b"k" * 32, rotate_bytes=2000)
                while True:
                    log.append_sync("operation", n=1, text="x" * 100)
                """
            ),
        ]
    )
    verdicts: list[str] = []
    try:
        while len(log_files(audit_dir)) < 3:  # the writer is rotating
            assert writer.poll() is None, "the writer stopped"
        for _ in range(200):
            try:
                result = verify(audit_dir, key)
            except AuditError:
                verdicts.append("changed under the check")
                continue
            assert result.ok, result.problem
            verdicts.append("ok")
    finally:
        writer.kill()
        writer.wait()
    assert "ok" in verdicts
    assert verify(audit_dir, key).ok


def test_a_closed_log_leaves_no_writer_thread_behind(audit_dir: Path) -> None:
    before = set(threading.enumerate())
    started: list[threading.Thread] = []
    log = AuditLog(audit_dir, KEY)  # kept: a log collected would end its thread anyway

    async def main() -> None:
        with log:
            await log.append("operation", service="gmail")
            started.extend(t for t in threading.enumerate() if t not in before)

    asyncio.run(main())
    assert started, "the coroutine's record went through a writer thread"
    for thread in started:
        thread.join(5)
    assert not [t.name for t in started if t.is_alive()]
