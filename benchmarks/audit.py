"""Audit log figures: append rate with fsync, a one-day query and a full verify.

Prints one JSON object. ``--events N`` sets the size of the generated log (default
1,000,000 spread over 30 days); the log is written with the module's own line format and
a real key, straight to disk in rotated files (not one fsync per line), so the query and
verify figures are about reading, not about how the log was made.

    uv run python benchmarks/audit.py
    uv run python benchmarks/audit.py --events 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airlock.security.audit import (
    CURRENT_NAME,
    GENESIS,
    AuditLog,
    encode_record,
    format_ts,
    query,
    rotated_name,
    verify,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
ROTATE_BYTES = 64 * 1024 * 1024  # the default of audit.rotate_bytes


def append_rate_one_writer(audit_dir: Path, key: bytes, seconds: float) -> float:
    with AuditLog(audit_dir, key) as log:
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            log.append_sync("operation", service="gmail", op="list_messages", uid=1000, count=20)
            count += 1
        return count / (time.perf_counter() - start)


def append_rate_threads(audit_dir: Path, key: bytes, writers: int, each: int) -> float:
    with AuditLog(audit_dir, key) as log:
        barrier = threading.Barrier(writers + 1)

        def writer(n: int) -> None:
            barrier.wait()
            for i in range(each):
                log.append_sync("operation", service="gmail", op="get_message", writer=n, i=i)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        return writers * each / (time.perf_counter() - start)


def append_rate_coroutines(
    audit_dir: Path, key: bytes, writers: int, each: int, *, writer_process: bool = False
) -> float:
    """Records a second from *writers* coroutines; with *writer_process*, written by the
    audit writer process as the daemon's are."""

    async def main() -> float:
        log = AuditLog(audit_dir, key, writer_process=writer_process)
        try:
            await log.append("daemon_started")  # the writer process started

            async def writer(n: int) -> None:
                for i in range(each):
                    await log.append("operation", service="gmail", op="search", writer=n, i=i)

            start = time.perf_counter()
            await asyncio.gather(*(writer(n) for n in range(writers)))
            return writers * each / (time.perf_counter() - start)
        finally:
            await log.aclose()

    return asyncio.run(main())


def generate_log(audit_dir: Path, key: bytes, events: int) -> int:
    """*events* records evenly over DAYS days, rotated like the writer rotates."""
    audit_dir.mkdir(parents=True, exist_ok=True)
    spacing = DAYS * 86400 / events
    base = START.timestamp()
    prev, size, first = GENESIS, 0, None
    current = audit_dir / CURRENT_NAME
    out = open(current, "wb")  # noqa: SIM115 - rotated by hand below
    services = ("gmail", "work", "calendar", "llm")
    operations = ("list_messages", "get_message", "search", "count_unread")
    try:
        for seq in range(1, events + 1):
            ts = format_ts(base + (seq - 1) * spacing)
            fields = {
                "service": services[seq % 4],
                "op": operations[seq % 4],
                "uid": 1000,
                "pid": 4000 + seq % 97,
                "session": f"ses_{seq // 500:08d}",
                "params": {"folder": "INBOX", "limit": 20},
                "outcome": "ok",
                "count": 20,
                "duration_ms": 12.5,
            }
            line, prev = encode_record(
                key, seq=seq, ts=ts, event="operation", fields=fields, prev=prev
            )
            if first is None:
                first = (seq, ts)
            out.write(line)
            size += len(line)
            if size >= ROTATE_BYTES:
                out.close()
                current.rename(audit_dir / rotated_name(first[1], first[0]))
                out = open(current, "wb")  # noqa: SIM115
                size, first = 0, None
    finally:
        out.close()
    return sum(p.stat().st_size for p in audit_dir.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the generated log")
    parser.add_argument(
        "--append-seconds", type=float, default=2.0, help="length of the 1-writer run"
    )
    parser.add_argument(
        "--dir", type=Path, help="work here and keep the files (default: a temp dir)"
    )
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="airlock-bench-audit-"))
    key = secrets.token_bytes(32)
    figures: dict[str, object] = {"benchmark": "audit", "events": args.events}
    try:
        figures["append_1_writer_events_per_s"] = round(
            append_rate_one_writer(root / "append1", key, args.append_seconds)
        )
        figures["append_32_threads_events_per_s"] = round(
            append_rate_threads(root / "append32t", key, writers=32, each=200)
        )
        figures["append_32_coroutines_events_per_s"] = round(
            append_rate_coroutines(root / "append32c", key, writers=32, each=200)
        )
        figures["append_32_coroutines_writer_process_events_per_s"] = round(
            append_rate_coroutines(
                root / "append32p", key, writers=32, each=200, writer_process=True
            )
        )

        log_dir = root / "log"
        start = time.perf_counter()
        figures["log_bytes"] = generate_log(log_dir, key, args.events)
        figures["log_files"] = len(os.listdir(log_dir))
        figures["generate_s"] = round(time.perf_counter() - start, 2)

        day = START + timedelta(days=DAYS // 2)
        start = time.perf_counter()
        found = query(log_dir, since=day, until=day + timedelta(days=1))
        figures["query_one_day_s"] = round(time.perf_counter() - start, 4)
        figures["query_one_day_events"] = len(found)

        start = time.perf_counter()
        latest = query(log_dir, limit=100, newest_first=True)
        figures["query_latest_100_s"] = round(time.perf_counter() - start, 4)
        assert len(latest) == min(100, args.events)

        start = time.perf_counter()
        result = verify(log_dir, key)
        figures["verify_s"] = round(time.perf_counter() - start, 3)
        figures["verify_ok"] = result.ok
        figures["verify_records"] = result.records
        figures["targets"] = {
            "query_one_day_s": 0.3,
            "verify_s_per_1m_events": 5.0,
            "append_32_events_per_s": 5000,
        }
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
