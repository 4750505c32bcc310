"""CLI start-up time: median wall time of `airlock --help`, `airlock plugins list` and
`airlock status` against `python -c pass`. Prints JSON. Target: `--help` <= 200 ms.

Bytecode is written by warm-up runs (PYTHONDONTWRITEBYTECODE is cleared), as a user's
installed copy would have it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_HELP_MS = 200.0


def airlock_command() -> list[str]:
    script = Path(sys.executable).with_name("airlock")
    return [str(script)] if script.exists() else [shutil.which("airlock") or "airlock"]


def median_ms(argv: list[str], env: dict[str, str], runs: int) -> float:
    for _ in range(3):  # warm-up: page cache and .pyc files
        subprocess.run(argv, env=env, capture_output=True, check=False)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="airlock-bench-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["AIRLOCK_HOME"] = home
    airlock = airlock_command()
    try:
        figures = {
            "python -c pass": median_ms([sys.executable, "-c", "pass"], env, args.runs),
            "airlock --help": median_ms([*airlock, "--help"], env, args.runs),
            "airlock plugins list": median_ms([*airlock, "plugins", "list"], env, args.runs),
            "airlock status": median_ms([*airlock, "status"], env, args.runs),
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)
    help_ms = figures["airlock --help"]
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "unit": "ms (median wall time)",
                "runs": args.runs,
                "figures": figures,
                "help_over_python_ms": round(help_ms - figures["python -c pass"], 1),
                "target_help_ms": TARGET_HELP_MS,
                "meets_target": help_ms <= TARGET_HELP_MS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
