"""Commands that need no daemon load no heavy library: registering a plugin imports its
component classes, and a component imports its client library (imapclient, Google's,
the MCP SDK, structlog and rich) only when it first works. benchmarks/cli_startup.py
measures the time; this keeps the cause from coming back unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("imapclient", "gcsa", "googleapiclient", "google.auth", "structlog", "mcp", "aiohttp")
PROBE = """
import runpy, sys
sys.argv = ["airlock", *sys.argv[1:]]
try:
    runpy.run_module("airlock", run_name="__main__")
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["plugins", "list", "--json", "--all"], ["init"], ["status"], ["services"]],
    ids=lambda argv: " ".join(argv),
)
def test_offline_commands_import_no_heavy_library(tmp_path: Path, argv: list[str]) -> None:
    env = {**os.environ, "AIRLOCK_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("HEAVY="))
    assert line == "HEAVY=", f"`airlock {' '.join(argv)}` imported {line[6:]}"
