"""CLI start-up time: median wall time of every command that does not need the daemon,
and of `airlock status` with one, against `python -c pass` in the same run. Prints JSON.

Targets: each offline command <= 150 ms (about 10x `python -c pass` here); `airlock status`
with a daemon <= 200 ms.

Bytecode is written by warm-up runs (PYTHONDONTWRITEBYTECODE is cleared), as a user's
installed copy would have it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airlock.clients.local_daemon import LocalDaemon

TARGET_OFFLINE_MS = 150.0
TARGET_STATUS_MS = 200.0
OFFLINE = {
    "airlock --help": ["--help"],
    "airlock plugins list": ["plugins", "list"],
    "airlock init": ["init"],
    "airlock status (no daemon)": ["status"],
    "airlock services (no daemon)": ["services"],
    "airlock audit verify (small log)": ["audit", "verify"],
}


def airlock_command() -> list[str]:
    script = Path(sys.executable).with_name("airlock")
    return [str(script)] if script.exists() else [shutil.which("airlock") or "airlock"]


def median_ms(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of *argv*, in ms. CPU time
    says what the command costs when other work shares the cores."""
    for _ in range(3):  # warm-up: page cache and .pyc files
        subprocess.run(argv, env=env, capture_output=True, check=False)
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        wall.append((time.perf_counter() - started) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        cpu.append(used * 1000)
    return round(statistics.median(wall), 1), round(statistics.median(cpu), 1)


def small_audit_log(home: Path) -> None:
    """A few records written the way the daemon writes them, so `audit verify` has work."""
    from airlock.security.audit import AuditLog
    from airlock.settings.paths import resolve_paths

    paths = resolve_paths({"AIRLOCK_HOME": str(home)})
    paths.ensure_data_dirs()
    with AuditLog(paths.audit_dir, paths.audit_key_file) as log:
        for n in range(50):
            log.append_sync("operation", service="mail", operation="count_unread", count=n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="airlock-bench-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["AIRLOCK_HOME"] = str(home)
    airlock = airlock_command()
    try:
        small_audit_log(home)
        measured = {"python -c pass": median_ms([sys.executable, "-c", "pass"], env, args.runs)}
        for name, argv in OFFLINE.items():
            measured[name] = median_ms([*airlock, *argv], env, args.runs)
        with LocalDaemon(home):
            measured["airlock status (daemon running)"] = median_ms(
                [*airlock, "status"], env, args.runs
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    figures = {name: wall for name, (wall, _) in measured.items()}
    cpu = {name: used for name, (_, used) in measured.items()}
    baseline = figures["python -c pass"]
    slow = {
        name: ms
        for name, ms in figures.items()
        if name.startswith("airlock ")
        and ms > (TARGET_STATUS_MS if "daemon running" in name else TARGET_OFFLINE_MS)
    }
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "unit": "ms (median wall time)",
                "runs": args.runs,
                "figures": figures,
                "cpu_ms": cpu,
                "ratio_to_python": {
                    name: round(ms / baseline, 1) for name, ms in figures.items() if baseline
                },
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "targets": {
                    "offline_ms": TARGET_OFFLINE_MS,
                    "status_with_daemon_ms": TARGET_STATUS_MS,
                },
                "over_target": slow,
                "meets_targets": not slow,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
