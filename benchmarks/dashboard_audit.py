"""Dashboard figures on a large audit log: the audit page's queries and the activity chart.

Prints one JSON object. The log is generated like benchmarks/audit.py does (``--events``,
default 1,000,000 over 30 days); the figures are the times of the very functions the
pages call (newest page, a page deep in the log, filters, text search, export, the
7-day activity counts), without HTTP.

    uv run python benchmarks/dashboard_audit.py
    uv run python benchmarks/dashboard_audit.py --events 100000
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from airlock.dashboard.activity import ActivityCache
from airlock.dashboard.audit_view import PAGE, Filters, find
from audit import DAYS, START, generate_log


def timed(figures: dict[str, Any], name: str, run: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = run()
    figures[f"{name}_s"] = round(time.perf_counter() - start, 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the generated log")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="airlock-bench-dashboard-"))
    figures: dict[str, Any] = {"benchmark": "dashboard_audit", "events": args.events}
    try:
        log = root / "log"
        generate_log(log, secrets.token_bytes(32), args.events)
        everything = Filters()
        newest = timed(figures, "newest_page", lambda: find(log, everything, None, PAGE + 1))
        assert len(newest) == PAGE + 1
        middle = START + timedelta(days=DAYS // 2)
        deep = (args.events // 2, middle.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        page = timed(figures, "page_mid_log", lambda: find(log, everything, deep, PAGE + 1))
        assert len(page) == PAGE + 1
        one_day = Filters(since=middle, until=middle + timedelta(days=1), service="gmail")
        timed(figures, "one_day_one_service_page", lambda: find(log, one_day, None, PAGE + 1))
        session = Filters(session=f"ses_{(args.events // 2) // 500:08d}")
        timed(figures, "session_whole_log_page", lambda: find(log, session, None, PAGE + 1))
        rare = Filters(text="no such text anywhere")
        timed(figures, "search_miss_whole_log", lambda: find(log, rare, None, PAGE + 1))
        day_search = Filters(since=middle, until=middle + timedelta(days=1), text="ses_0")
        timed(figures, "search_one_day_page", lambda: find(log, day_search, None, PAGE + 1))
        exported = timed(
            figures,
            "export_one_day",
            lambda: find(log, Filters(since=middle, until=middle + timedelta(days=1)), None, 10**6),
        )
        figures["export_one_day_records"] = len(exported)
        end = (START + timedelta(days=DAYS)).timestamp()
        cache = ActivityCache()
        timed(figures, "activity_7_days_first", lambda: cache.counts(log, end))
        timed(figures, "activity_7_days_cached", lambda: cache.counts(log, end + 60))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
