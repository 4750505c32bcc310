"""The mcp connector in front of `mcp-server-git` from PyPI (installed with the test
dependencies): its read-only tools are reads, its commits and checkouts are writes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airlock.plugin import Access
from airlock_mcp_proxy.results import McpToolResult
from tests.mcp_proxy.conftest import opened

SERVER = Path(sys.executable).with_name("mcp-server-git")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=Me", "-c", "user.email=me@example.test"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "todo.txt").write_text("call the dentist\n")
    subprocess.run([*git, "add", "todo.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "first note"], check=True)
    return repo


def test_git_tools_are_reads_and_writes_and_a_read_works(repository: Path) -> None:
    if not SERVER.exists():
        pytest.fail(f"{SERVER} missing: mcp-server-git is a test dependency (uv sync)")
    settings = {"command": [str(SERVER), "--repository", str(repository)], "timeout": 30}

    async def main() -> tuple[dict[str, Access], Any]:
        async with opened(settings) as connector:
            access = {n: s.access for n, s in connector.listed.items()}
            log = await connector.call("git_log", {"repo_path": str(repository)})
            return access, log

    access, log = asyncio.run(main())
    assert access["git_status"] is Access.READ
    assert access["git_log"] is Access.READ
    assert access["git_commit"] is Access.WRITE
    assert access["git_checkout"] is Access.WRITE
    assert isinstance(log, McpToolResult)
    assert not log.is_error
    assert "first note" in (log.content[0].text or "")
