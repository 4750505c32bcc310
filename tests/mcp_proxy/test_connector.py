"""The mcp connector against real MCP servers: the npm filesystem server (tools with
read-only annotations and writes) and a small Python server that leaks and crashes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airlock.plugin import (
    Access,
    ConnectorAuthError,
    ConnectorError,
    InvalidInput,
)
from airlock_mcp_proxy.results import McpToolResult
from tests.mcp_proxy.conftest import TOY, opened, proxy, toy_settings

SECRET = "ghp_canary0123456789abcdefSECRET"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_tools_become_operations_read_only_ones_as_reads(files_settings: dict[str, Any]) -> None:
    async def main() -> dict[str, Any]:
        async with opened(files_settings) as connector:
            return {n: s for n, s in connector.listed.items()}

    ops = run(main())
    assert ops["read_text_file"].access is Access.READ
    assert ops["list_directory"].access is Access.READ
    assert ops["write_file"].access is Access.WRITE
    assert ops["write_file"].destructive
    assert ops["create_directory"].access is Access.WRITE, "annotated not read-only"
    assert ops["read_text_file"].params_schema()["required"] == ["path"]


def test_a_read_tool_returns_the_servers_content(
    files_settings: dict[str, Any], served: Path
) -> None:
    async def main() -> Any:
        async with opened(files_settings) as connector:
            path = str(served / "notes.txt")
            ok = await connector.call("read_text_file", {"path": path})
            refused = await connector.call("read_text_file", {"path": "/etc/passwd"})
            return ok, refused

    ok, refused = run(main())
    assert isinstance(ok, McpToolResult)
    assert ok.tool == "read_text_file"
    assert not ok.is_error
    assert ok.content[0].type == "text"
    assert "buy milk" in (ok.content[0].text or "")
    assert ok.structured == {"content": "buy milk\nyour code is 482913\n"}
    assert refused.is_error, "the server's own refusal reaches the agent as a tool error"


def test_an_answer_of_megabytes_arrives_whole(files_settings: dict[str, Any], served: Path) -> None:
    """Well under the 16 MiB a line from the server may take: the answer's one line
    carries the file twice (text and structured content), ~12 MB of JSON."""
    text = "".join(f"line {n:07d} of a long file\n" for n in range(200_000))
    (served / "long.txt").write_text(text)

    async def main() -> Any:
        async with opened(files_settings) as connector:
            return await connector.call("read_text_file", {"path": str(served / "long.txt")})

    answer = run(main())
    assert answer.content[0].text == text
    assert answer.structured == {"content": text}


def test_arguments_are_checked_against_the_tools_schema(files_settings: dict[str, Any]) -> None:
    async def main() -> list[str | None]:
        fields = []
        async with opened(files_settings) as connector:
            for params in ({}, {"path": 5}, {"path": "x", "no_such_argument": 1}):
                with pytest.raises(InvalidInput) as caught:
                    await connector.call("read_text_file", params)
                fields.append(caught.value.field)
        return fields

    assert run(main()) == ["path", "path", "no_such_argument"]


def test_allow_list_and_overrides(files_settings: dict[str, Any]) -> None:
    settings = {
        **files_settings,
        "tools": ["read_*", "list_directory", "write_file", "create_directory"],
        "read_tools": ["create_directory", "read_*"],
        "write_tools": ["read_media_file"],
    }

    async def main() -> dict[str, Access]:
        async with opened(settings) as connector:
            return {n: s.access for n, s in connector.listed.items()}

    ops = run(main())
    assert set(ops) == {
        "read_file",
        "read_text_file",
        "read_media_file",
        "read_multiple_files",
        "list_directory",
        "write_file",
        "create_directory",
    }
    assert ops["create_directory"] is Access.READ, "read_tools overrides the server"
    assert ops["read_media_file"] is Access.WRITE, "write_tools wins"
    assert ops["write_file"] is Access.WRITE


def test_unannotated_tools_are_writes_unless_read_tools_says_so() -> None:
    async def main(settings: dict[str, Any]) -> Access:
        async with opened(settings) as connector:
            return connector.listed["unsure"].access

    assert run(main(toy_settings())) is Access.WRITE
    assert run(main(toy_settings(read_tools=["unsure"]))) is Access.READ


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"command": ["x"], "commands": ["y"]}, "services.files.commands"),
        ({"command": ["x"], "url": "http://127.0.0.1:1/mcp"}, "services.files"),
        ({}, "services.files"),
        ({"url": "file:///etc/passwd"}, "services.files.url"),
        ({"command": []}, "services.files.command"),
        ({"command": ["x"], "timeout": 0}, "services.files.timeout"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        proxy(settings)
    assert caught.value.field == field


def test_env_secrets_reach_the_server_but_never_the_agent() -> None:
    settings = toy_settings(env={"TOY_TOKEN": "{credentials.token}", "PLAIN": "x"})

    async def main() -> McpToolResult:
        async with opened(settings, {"token": SECRET}) as connector:
            result = await connector.call("show_env", {"name": "TOY_TOKEN"})
            assert isinstance(result, McpToolResult)
            return result

    result = run(main())
    text = result.model_dump_json()
    assert SECRET not in text
    assert "TOY_TOKEN=[secret]" in text, "the server did get the value, and it was masked"


ODD_SECRET = 'wJalr/K7+bPx=ä "q\\ zz-canary'
"""A key with what URLs and JSON spell otherwise: / + = space, a quote, a backslash, ä."""


@pytest.mark.parametrize("spelling", ["url", "url_path", "url_form", "json_ascii", "json"])
def test_a_secret_the_server_echoes_encoded_reaches_neither_the_agent_nor_the_log(
    spelling: str,
) -> None:
    """An HTTP library's error quoting the URL it called spells the key URL-encoded, and
    JSON text escapes it: withheld only as stored, most of it reached the agent."""
    from urllib.parse import quote, quote_plus

    from structlog.testing import capture_logs

    settings = toy_settings(env={"TOY_TOKEN": "{credentials.token}"})
    spelled = {
        "url": quote(ODD_SECRET, safe=""),
        "url_path": quote(ODD_SECRET),
        "url_form": quote_plus(ODD_SECRET),
        "json_ascii": json.dumps(ODD_SECRET)[1:-1],
        "json": json.dumps(ODD_SECRET, ensure_ascii=False)[1:-1],
    }[spelling]

    async def main() -> McpToolResult:
        async with opened(settings, {"token": ODD_SECRET}) as connector:
            result = await connector.call(
                "show_env_spelled", {"name": "TOY_TOKEN", "spelling": spelling}
            )
            assert isinstance(result, McpToolResult)
            for _ in range(100):  # the stderr line, relayed by a thread
                if any("api.example" in str(e.get("line")) for e in logged):
                    break
                await asyncio.sleep(0.02)
            return result

    with capture_logs() as logged:
        result = run(main())
    text = result.model_dump_json()
    assert "key=[secret]" in text, text
    lines = [str(e["line"]) for e in logged if "api.example" in str(e.get("line"))]
    assert lines == ["GET https://api.example/v1?key=[secret] failed"]
    assert "canary" not in text + "".join(lines)
    assert spelled not in text


def test_a_credential_not_stored_is_a_clear_error() -> None:
    settings = toy_settings(env={"TOY_TOKEN": "{credentials.token}"})
    with pytest.raises(ConnectorAuthError, match="no stored credential 'token'"):
        run(proxy(settings).open())


def test_the_credentials_asked_for_are_those_env_names() -> None:
    settings = proxy(
        toy_settings(env={"A": "Bearer {credentials.token}", "B": "{credentials.org}"})
    )
    model = type(settings).credentials_model(settings.settings)
    assert list(model.model_fields) == ["token", "org"]


def test_a_crash_is_a_clean_error_and_the_server_is_restarted_once() -> None:
    async def main() -> None:
        async with opened(toy_settings()) as connector:
            with pytest.raises(ConnectorError, match="the MCP server stopped"):
                await connector.call("crash", {})
            again = await connector.call("show_env", {"name": "HOME"})
            assert isinstance(again, McpToolResult)
            assert not again.is_error, "restarted"
            with pytest.raises(ConnectorError):
                await connector.call("crash", {})
            with pytest.raises(ConnectorError, match="not restarted"):
                await connector.call("show_env", {"name": "HOME"})

    run(main())


def test_calls_arriving_together_after_a_crash_start_one_server(tmp_path: Path) -> None:
    """Two calls that find the server gone at once: one starts it again, the other uses
    that one (or is refused); no second server is started and left running."""
    pid_file = tmp_path / "toy.pids"

    async def main() -> None:
        async with opened(toy_settings(env={"TOY_PID_FILE": str(pid_file)})) as connector:
            with pytest.raises(ConnectorError, match="the MCP server stopped"):
                await connector.call("crash", {})
            await asyncio.gather(
                *(connector.call("show_env", {"name": "HOME"}) for _ in range(3)),
                return_exceptions=True,
            )

    run(main())
    pids = [int(line) for line in pid_file.read_text().split()]
    assert len(pids) == 2, "started once, and once again after the crash"
    for pid in pids:
        status = proc_status(pid)
        assert status == "" or "zombie" in status, f"server {pid} still runs"


def touch(path: Path) -> None:
    path.touch()


def wait_for_starts(pid_file: Path, count: int) -> None:
    while len(pid_file.read_text().split()) < count:
        time.sleep(0.01)  # the server's start, not a timing assumption of the test


def test_a_server_still_starting_when_the_service_closes_is_stopped(tmp_path: Path) -> None:
    """The session ends (the connector closes) while a call starts the server again after
    a crash: the server that comes up after the close must not be left running."""
    pid_file, gate = tmp_path / "toy.pids", tmp_path / "gate"
    settings = toy_settings(env={"TOY_PID_FILE": str(pid_file), "TOY_GATE": str(gate)})

    async def main() -> None:
        connector = proxy(settings)
        await connector.open()
        await connector.discover()
        with pytest.raises(ConnectorError, match="the MCP server stopped"):
            await connector.call("crash", {})
        await asyncio.to_thread(touch, Path(f"{gate}.armed"))
        call = asyncio.create_task(connector.call("show_env", {"name": "HOME"}))
        await asyncio.to_thread(wait_for_starts, pid_file, 2)  # the second waits at the gate
        await connector.close()
        await asyncio.to_thread(touch, gate)
        with pytest.raises(ConnectorError, match="closed"):
            await call

    run(main())
    for pid in [int(line) for line in pid_file.read_text().split()]:
        status = proc_status(pid)
        assert status == "" or "zombie" in status, f"server {pid} still runs"


def test_a_server_that_dies_at_start_is_a_clean_error() -> None:
    connector = proxy(toy_settings(env={"TOY_CRASH_AT_START": "1"}))
    with pytest.raises(ConnectorError, match="did not start"):
        run(connector.open())
    run(connector.close())


def test_a_missing_command_is_a_clean_error(tmp_path: Path) -> None:
    connector = proxy({"command": [str(tmp_path / "no-such-server")]})
    with pytest.raises(ConnectorError, match="did not start"):
        run(connector.open())


def proc_status(pid: int) -> str:
    """/proc/PID/status, or "" once the process is gone."""
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return ""


def test_the_server_runs_as_the_daemons_child_and_stops_when_the_service_closes(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "toy.pid"

    async def main() -> tuple[int, str]:
        async with opened(toy_settings(env={"TOY_PID_FILE": str(pid_file)})) as connector:
            await connector.call("show_env", {"name": "HOME"})
            pid = int(pid_file.read_text())
            return pid, proc_status(pid)

    pid, running = run(main())
    assert f"PPid:\t{os.getpid()}" in running, "a child of this (the daemon's) process"
    assert f"Uid:\t{os.getuid()}" in running, "as the daemon's user"
    gone = proc_status(pid)
    assert gone == "" or "zombie" in gone, "stopped when the service closed"


def test_a_description_cannot_carry_terminal_escapes() -> None:
    async def main() -> str:
        async with opened(toy_settings()) as connector:
            return connector.listed["hello"].description

    description = run(main())
    assert description.startswith("Say hello.")
    assert "\x1b" not in description
    assert "\x07" not in description


def test_a_tool_slower_than_the_timeout_is_a_clean_error() -> None:
    async def main() -> None:
        async with opened(toy_settings(timeout=1)) as connector:
            with pytest.raises(ConnectorError, match="the MCP server timed out"):
                await connector.call("nap", {"seconds": 5})

    run(main())


def test_a_streamable_http_server_by_url(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "TOY_HTTP_PORT": str(port), "TOY_TOKEN": "not-from-the-vault"}
    server = subprocess.Popen([sys.executable, str(TOY)], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)  # the server's start, not a timing assumption of the test

        async def main() -> McpToolResult:
            settings = {"url": f"http://127.0.0.1:{port}/mcp", "timeout": 30}
            async with opened(settings) as connector:
                assert connector.listed["show_env"].access is Access.READ
                result = await connector.call("show_env", {"name": "TOY_TOKEN"})
                assert isinstance(result, McpToolResult)
                return result

        assert "TOY_TOKEN=not-from-the-vault" in run(main()).model_dump_json()
    finally:
        server.terminate()
        server.wait(10)
