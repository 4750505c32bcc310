"""The mcp connector against a hostile MCP server (tests/mcp_proxy/hostile_server.py):
what it lists must neither hang the connector nor hand the vault's secrets to agents."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from airlock.plugin import Access, ConnectorError
from airlock_mcp_proxy import sdk_log
from airlock_mcp_proxy.upstream import LINE_LIMIT, _relay_stderr
from tests.mcp_proxy.conftest import opened

HOSTILE = Path(__file__).with_name("hostile_server.py")
SECRET = "ghp_canary0123456789abcdefSECRET"


def hostile(mode: str, **env: str) -> dict[str, Any]:
    return {
        "command": [sys.executable, str(HOSTILE)],
        "timeout": 30,
        "env": {"HOSTILE": mode, **env},
    }


def test_a_tool_list_that_never_ends_is_cut_short() -> None:
    async def main() -> dict[str, Any]:
        async with opened(hostile("endless_pages")) as connector:
            return dict(connector.listed)

    assert asyncio.run(main()) == {}, "listing stopped long before the server gave up"


def test_a_secret_in_the_tool_list_never_reaches_the_agent() -> None:
    settings = {
        **hostile("token_in_listing", TOY_TOKEN="{credentials.token}"),
        "tools": ["lookup"],  # the other one is left out, and the log says which
    }

    async def main() -> tuple[str, dict[str, Any]]:
        async with opened(settings, {"token": SECRET}) as connector:
            spec = connector.listed["lookup"]
            return spec.description, spec.params_schema()

    with capture_logs() as logged:
        description, schema = asyncio.run(main())
    assert SECRET not in description + json.dumps(schema)
    assert "[secret]" in description, "the server did put it there, and it was masked"
    assert "mcp_tool_left_out" in [entry["event"] for entry in logged]
    assert SECRET not in json.dumps(logged)


def test_a_tool_whose_schema_is_too_big_for_an_agent_is_left_out() -> None:
    async def main() -> list[str]:
        async with opened(hostile("huge_schema")) as connector:
            return sorted(connector.listed)

    assert asyncio.run(main()) == ["small"]


@pytest.mark.parametrize("glob", ["delete_repo", "delete_*", "Delete-*"])
def test_write_tools_matches_the_name_the_person_sees_too(glob: str) -> None:
    """The person reads `delete_repo` in `airlock services` and lists it in write_tools:
    the server's own spelling (`Delete-Repo`) must not slip past the override."""
    settings = {**hostile("read_only_delete"), "write_tools": [glob]}

    async def main() -> Access:
        async with opened(settings) as connector:
            return connector.listed["delete_repo"].access

    assert asyncio.run(main()) is Access.WRITE


def test_a_schema_that_cannot_be_checked_is_a_clean_error() -> None:
    async def main() -> list[str]:
        messages = []
        async with opened(hostile("bad_refs")) as connector:
            for tool in ("loop", "remote"):
                with pytest.raises(ConnectorError, match="schema cannot be checked") as caught:
                    await connector.call(tool, {"x": 1})
                messages.append(caught.value.message)
        return messages

    loop, remote = asyncio.run(main())
    assert "refers to itself" in loop
    assert "example.invalid" not in remote, "a schema's addresses are the server's words"


def test_a_line_of_stderr_without_end_is_not_held_whole() -> None:
    """A server writing to stderr without ever ending the line must not fill the
    daemon's memory: the relay keeps the start of each line and drops the rest."""
    read_fd, write_fd = os.pipe()
    chunk = b"x" * (1024 * 1024)

    def write() -> None:
        with os.fdopen(write_fd, "wb") as stream:
            for _ in range(64):
                stream.write(chunk)
            stream.write(SECRET.encode() + b"\nthe next line\n")
            stream.write(b"y" * (LINE_LIMIT - 5) + SECRET.encode() + b"\n")

    writer = threading.Thread(target=write)
    writer.start()
    tracemalloc.start()
    try:
        with capture_logs() as logged:
            _relay_stderr(os.fdopen(read_fd, "r", encoding="utf-8"), "files", [SECRET])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        writer.join()
    relayed = [entry["line"] for entry in logged if entry["event"] == "mcp_server_stderr"]
    assert peak < 8 * 1024 * 1024, f"held {peak} bytes at once"
    at_the_cut = ("y" * (LINE_LIMIT - 5) + "[secret]")[:LINE_LIMIT]
    assert relayed == ["x" * LINE_LIMIT, "the next line", at_the_cut]


def test_what_the_mcp_client_logs_of_a_server_has_its_secrets_masked() -> None:
    """The SDK's own warnings quote the server's words (a tool's name): into the daemon
    log with the running servers' secrets masked and no traceback."""
    owner = object()
    sdk_log.hide(owner, [SECRET])
    try:
        with capture_logs() as logged:
            try:
                raise ValueError(f"input_value='{SECRET}'")
            except ValueError:
                logging.getLogger("mcp.client.session").exception(
                    "dropping tool %r: invalid", f"also-{SECRET}"
                )
    finally:
        sdk_log.forget(owner)
    assert logged == [
        {
            "event": "mcp_client_log",
            "message": "dropping tool 'also-[secret]': invalid",
            "error": "ValueError",
            "log_level": "error",
        }
    ]


def test_a_read_the_server_started_again_lists_as_a_write_is_refused(tmp_path: Path) -> None:
    """The server exits mid-call and the next call starts it again: one that now lists a
    tool as no longer read-only (a newer version) must not run it as the read it was."""
    settings = hostile("flip", STARTS=str(tmp_path / "starts"))

    async def main() -> tuple[Access, str, Access]:
        async with opened(settings) as connector:
            first = connector.listed["peek"].access
            with pytest.raises(ConnectorError, match="the MCP server stopped"):
                await connector.call("crash", {})
            with pytest.raises(ConnectorError) as refused:
                await connector.call("peek", {})
            return first, refused.value.message, connector.listed["peek"].access

    first, message, now = asyncio.run(main())
    assert first is Access.READ
    assert message == "files.peek is listed as a write now, no longer a read"
    assert now is Access.WRITE, "the next call of it is a write, with the person's approval"
