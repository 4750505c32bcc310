"""Fixtures of the MCP proxy tests: connectors in front of real MCP servers (the npm
filesystem server, and a small Python one for leaks and crashes)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from airlock_mcp_proxy.connector import McpProxy
from tests.mcp_proxy.servers import filesystem_server

TOY = Path(__file__).with_name("toy_server.py")
MakeProxy = Callable[..., Any]


def proxy(settings: dict[str, Any], credentials: dict[str, str] | None = None) -> McpProxy:
    parsed = McpProxy.parse_settings(settings, service="files")
    creds = McpProxy.parse_credentials(credentials or {}, service="files")
    return McpProxy(parsed, creds, service="files")


@asynccontextmanager
async def opened(
    settings: dict[str, Any], credentials: dict[str, str] | None = None
) -> AsyncIterator[McpProxy]:
    """An open connector that has listed its tools, closed afterwards."""
    connector = proxy(settings, credentials)
    await connector.open()
    try:
        await connector.discover()
        yield connector
    finally:
        await connector.close()


@pytest.fixture(scope="session")
def filesystem_argv() -> list[str]:
    return filesystem_server()


@pytest.fixture
def served(tmp_path: Path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "notes.txt").write_text("buy milk\nyour code is 482913\n")
    return folder


@pytest.fixture
def files_settings(filesystem_argv: list[str], served: Path) -> dict[str, Any]:
    return {"command": [*filesystem_argv, str(served)], "timeout": 30}


def toy_settings(**extra: Any) -> dict[str, Any]:
    return {"command": [sys.executable, str(TOY)], "timeout": 30, **extra}
