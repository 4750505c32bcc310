"""Real MCP servers for the tests, written by others: ``@modelcontextprotocol/server-
filesystem`` from npm, installed once per version into a cache shared by test sessions
(``.ci/run`` installs it before the suite: ``python tests/mcp_proxy/servers.py``).

Without Node and npm the tests that need it skip locally and fail under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from airlock.testing import skip_or_fail_under_ci

FILESYSTEM_PACKAGE = "@modelcontextprotocol/server-filesystem"
FILESYSTEM_VERSION = "2026.8.31"
CACHE = Path(os.environ.get("AIRLOCK_TEST_CACHE", Path.home() / ".cache" / "airlock-tests"))


def install_filesystem_server() -> Path:
    """The server's entry script, installed with npm into the cache the first time."""
    home = CACHE / f"server-filesystem-{FILESYSTEM_VERSION}"
    entry = home / "node_modules" / FILESYSTEM_PACKAGE / "dist" / "index.js"
    if entry.exists():
        return entry
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise FileNotFoundError("node and npm (the filesystem MCP server is a Node package)")
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="server-filesystem-", dir=CACHE))
    try:
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(staging),
                "--no-audit",
                "--no-fund",
                f"{FILESYSTEM_PACKAGE}@{FILESYSTEM_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        try:
            staging.rename(home)  # atomic: a parallel session sees all of it or nothing
        except OSError:
            if not entry.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry


def filesystem_server() -> list[str]:
    """The argv prefix of the filesystem server (the served folders go after it)."""
    try:
        entry = install_filesystem_server()
    except (FileNotFoundError, subprocess.SubprocessError) as exc:
        skip_or_fail_under_ci(f"cannot install {FILESYSTEM_PACKAGE}: {exc}")
    node = shutil.which("node")
    assert node is not None
    return [node, str(entry)]


if __name__ == "__main__":
    print(install_filesystem_server())
    sys.exit(0)
