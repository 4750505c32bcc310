"""The MCP server, in-process and over a real stdio subprocess, against a daemon that
speaks the documented wire format on a real socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import mcp
import pytest
import typer
from fake_daemon import SERVICES, FakeDaemon, running
from mcp.types import CallToolResult
from typer.testing import CliRunner

from airlock import api
from airlock.cli import mcp as mcp_cli
from airlock.cli.context import CliState
from airlock.client import AirlockClient
from airlock.framework.plugins import get_plugin_manager
from airlock.mcp.server import build_server
from airlock.mcp.tools import UNTRUSTED_NOTE

T = TypeVar("T")
Body = Callable[[mcp.Client], Awaitable[T]]

FIXED_TOOLS = {"airlock_status", "airlock_request_access"}
# Declared by the mail services (airlock-mail's connectors), not by core.
ALIAS_TOOLS = {
    "airlock_list_emails",
    "airlock_search_emails",
    "airlock_get_email",
    "airlock_count_unread",
}


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sock") as d:
        yield Path(d)


@pytest.fixture
def daemon(sock_dir: Path) -> Iterator[FakeDaemon]:
    with running(sock_dir / "airlock.sock") as fake:
        yield fake


def with_mcp(socket: Path, body: Body[T], *, approval_wait: float = 10.0) -> T:
    async def main() -> T:
        airlock = AirlockClient(socket, approval_wait=approval_wait)
        async with airlock, mcp.Client(build_server(airlock)) as session:
            return await body(session)

    return asyncio.run(main())


def text(result: CallToolResult) -> str:
    first = result.content[0]
    assert first.type == "text"
    return first.text


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    assert isinstance(result.structured_content, dict)
    assert json.loads(text(result)) == result.structured_content
    return result.structured_content


# -- the tool list ------------------------------------------------------------------


def test_tools_are_the_fixed_ones_plus_one_per_service_operation(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> Any:
        return (await session.list_tools()).tools

    tools = {t.name: t for t in with_mcp(daemon.socket, body)}
    per_operation = {f"{s.name}_{op.name}": op for s in SERVICES for op in s.operations}
    assert set(tools) == FIXED_TOOLS | ALIAS_TOOLS | set(per_operation)
    assert (
        tools["gmail_list_messages"].input_schema
        == per_operation["gmail_list_messages"].params_schema
    )
    assert tools["work-mail_count_unread"].annotations is not None
    assert tools["gmail_list_messages"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert tools["gmail_mark_read"].annotations.read_only_hint is False  # type: ignore[union-attr]
    assert "approval of these exact parameters" in (tools["gmail_mark_read"].description or "")
    assert "untrusted" in (tools["calendar_today"].description or "")
    request = tools["airlock_request_access"].input_schema
    assert set(request["properties"]) == {"services", "reason", "ttl"}
    assert set(request["required"]) == {"services", "reason"}


def test_without_a_daemon_the_fixed_tools_remain_and_say_how_to_start_it(
    sock_dir: Path,
) -> None:
    async def body(session: mcp.Client) -> tuple[set[str], list[CallToolResult]]:
        names = {t.name for t in (await session.list_tools()).tools}
        calls = [
            await session.call_tool("airlock_status", {}),
            await session.call_tool("gmail_list_messages", {}),
        ]
        return names, calls

    names, calls = with_mcp(sock_dir / "missing.sock", body)
    assert names == FIXED_TOOLS
    for result in calls:
        assert result.is_error
        assert "(hint: start it with `airlock serve`)" in text(result)


# -- a tool asks for access by itself ---------------------------------------------------


def test_a_tool_without_a_session_asks_waits_with_progress_and_runs(daemon: FakeDaemon) -> None:
    daemon.answer_after_polls = 2
    progress: list[tuple[float, float | None, str | None]] = []

    async def note(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def body(session: mcp.Client) -> tuple[CallToolResult, CallToolResult]:
        first = await session.call_tool("gmail_list_messages", {"limit": 5}, progress_callback=note)
        again = await session.call_tool("gmail_count_unread", {})
        return first, again

    first, again = with_mcp(daemon.socket, body)
    result = structured(first)
    assert result["untrusted_content_from"] == "gmail"
    assert result["operation"] == "list_messages"
    assert result["note"] == UNTRUSTED_NOTE
    assert result["result"]["echo"] == {"limit": 5}
    assert structured(again)["result"] == 3

    (req,) = daemon.requests  # the second call used the same session
    assert req.body.services == ["gmail"]
    assert req.body.access == "read"
    assert req.body.reason == "MCP tool gmail_list_messages called by the agent"
    assert req.body.agent == "mcp (MCP)"
    assert len(progress) == 3
    assert all(total == 10.0 for _, total, _ in progress)
    assert f"airlock approve {req.code}" in (progress[0][2] or "")


def test_a_revoked_session_is_asked_for_again(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> CallToolResult:
        structured(await session.call_tool("gmail_count_unread", {}))
        daemon.sessions.clear()  # the person ran `airlock revoke --all`
        return await session.call_tool("gmail_count_unread", {})

    assert structured(with_mcp(daemon.socket, body))["result"] == 3
    assert len(daemon.requests) == 2


def test_a_denied_request_is_a_tool_error_the_model_can_read(daemon: FakeDaemon) -> None:
    daemon.answer = "deny"

    async def body(session: mcp.Client) -> CallToolResult:
        return await session.call_tool("calendar_today", {})

    result = with_mcp(daemon.socket, body)
    assert result.is_error
    assert "the person denied request" in text(result)
    assert daemon.calls == []


def test_nobody_approving_within_approval_wait_is_pending_not_an_error_and_resumes(
    daemon: FakeDaemon,
) -> None:
    daemon.answer = "ignore"

    async def body(session: mcp.Client) -> tuple[CallToolResult, CallToolResult]:
        first = await session.call_tool("calendar_today", {})
        daemon.answer = "approve"  # the person approves after the tool gave up waiting
        return first, await session.call_tool("calendar_today", {})

    first, again = with_mcp(daemon.socket, body, approval_wait=0)
    pending = structured(first)
    (req,) = daemon.requests
    assert pending["status"] == "pending"
    assert pending["request"] == req.code
    assert pending["fingerprint"]
    assert f"airlock approve {req.code}" in pending["note"]
    assert "call this tool again" in pending["note"]
    assert structured(again)["untrusted_content_from"] == "calendar"
    assert len(daemon.requests) == 1, "calling again resumed the same request"
    assert [c.operation for c in daemon.calls] == ["today"]


def test_request_access_waits_at_most_approval_wait_then_is_pending_and_resumes(
    daemon: FakeDaemon,
) -> None:
    daemon.answer = "ignore"
    ask = {"services": ["gmail"], "reason": "summarise"}

    async def body(session: mcp.Client) -> list[dict[str, Any]]:
        out = [structured(await session.call_tool("airlock_request_access", ask))]
        out.append(structured(await session.call_tool("airlock_request_access", ask)))
        daemon.answer = "approve"
        out.append(structured(await session.call_tool("airlock_request_access", ask)))
        return out

    first, second, third = with_mcp(daemon.socket, body, approval_wait=0)
    assert first["status"] == second["status"] == "pending"
    assert first["request"] == second["request"] == daemon.requests[0].code
    assert third["status"] == "approved"
    assert len(daemon.requests) == 1


def test_a_different_ask_while_one_is_pending_is_a_new_request(daemon: FakeDaemon) -> None:
    daemon.answer = "ignore"

    async def body(session: mcp.Client) -> None:
        await session.call_tool("airlock_request_access", {"services": ["gmail"], "reason": "r"})
        await session.call_tool("airlock_request_access", {"services": ["calendar"], "reason": "r"})

    with_mcp(daemon.socket, body, approval_wait=0)
    assert [r.body.services for r in daemon.requests] == [["gmail"], ["calendar"]]


def test_every_service_tool_declares_an_output_schema_and_honest_hints(
    daemon: FakeDaemon,
) -> None:
    async def body(session: mcp.Client) -> Any:
        return {t.name: t for t in (await session.list_tools()).tools}

    tools = with_mcp(daemon.socket, body)
    for name, tool in tools.items():
        if name not in FIXED_TOOLS:
            assert tool.output_schema is not None, name
    read, write = tools["gmail_list_messages"], tools["gmail_mark_read"]
    assert read.annotations is not None
    assert write.annotations is not None
    assert (read.annotations.read_only_hint, read.annotations.destructive_hint) == (True, False)
    assert write.annotations.read_only_hint is False
    assert write.annotations.destructive_hint is False  # marking read can be undone
    assert "reason" in write.input_schema["properties"]
    assert "reason" not in read.input_schema["properties"]
    status = tools["airlock_status"].annotations
    assert status is not None
    assert status.open_world_hint is False


def test_a_write_tools_reason_reaches_the_person(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> CallToolResult:
        return await session.call_tool(
            "gmail_mark_read", {"id": "1.1", "reason": "you asked me to clear the newsletter"}
        )

    result = with_mcp(daemon.socket, body)
    structured(result)
    (req,) = daemon.requests
    assert req.body.reason.endswith(": you asked me to clear the newsletter")
    assert daemon.calls[0].params == {"id": "1.1"}


def test_the_tool_list_changes_when_the_daemon_appears(sock_dir: Path) -> None:
    """On a 2026-07-28 connection the change arrives on subscriptions/listen."""
    socket = sock_dir / "airlock.sock"

    async def main() -> tuple[set[str], set[str], object]:
        airlock = AirlockClient(socket, approval_wait=1)
        server = build_server(airlock, watch_every=0.1)
        async with airlock, mcp.Client(server) as session:
            before = {t.name for t in (await session.list_tools()).tools}
            async with session.listen(tools_list_changed=True) as changes:
                with running(socket):
                    with anyio.fail_after(20):
                        event = await changes.__anext__()
                    after = {t.name for t in (await session.list_tools()).tools}
        return before, after, event

    before, after, event = asyncio.run(main())
    assert before == FIXED_TOOLS
    assert type(event).__name__ == "ToolsListChanged"
    assert "gmail_list_messages" in after


def test_a_tool_call_follows_the_daemons_services_after_the_list_is_read_again(
    daemon: FakeDaemon,
) -> None:
    """Tools are looked up in a table built once per catalogue: a reconfigured daemon
    (a service gone) is seen as soon as the tool list is read again."""

    async def body(session: mcp.Client) -> tuple[CallToolResult, CallToolResult]:
        before = await session.call_tool("calendar_today", {})
        daemon.services = [s for s in daemon.services if s.name != "calendar"]
        await session.list_tools()
        return before, await session.call_tool("calendar_today", {})

    before, after = with_mcp(daemon.socket, body)
    assert "no tool" not in text(before)
    assert after.is_error
    assert "no tool 'calendar_today'" in text(after)


def test_a_tool_name_two_services_would_give_is_offered_by_neither(daemon: FakeDaemon) -> None:
    """Service ``notes`` with operation ``repo_git_status`` and service ``notes_repo``
    with ``git_status`` both make ``notes_repo_git_status``: an MCP server behind
    ``notes`` names its tools as it likes, and must not catch calls meant for another
    service (nor make the tool list hold one name twice)."""
    no_params = {"type": "object", "properties": {}}
    shadow = api.OperationInfo(
        name="repo_git_status", access="read", description="Harmless.", params_schema=no_params
    )
    meant = api.OperationInfo(
        name="git_status", access="read", description="The status.", params_schema=no_params
    )
    daemon.services = [
        *daemon.services,
        api.ServiceInfo(name="notes", connector="mcp", title="MCP", operations=[shadow]),
        api.ServiceInfo(name="notes_repo", connector="mcp", title="MCP", operations=[meant]),
    ]

    async def body(session: mcp.Client) -> tuple[list[str], CallToolResult]:
        names = [tool.name for tool in (await session.list_tools()).tools]
        return names, await session.call_tool("notes_repo_git_status", {})

    names, call = with_mcp(daemon.socket, body)
    assert len(names) == len(set(names)), "no name listed twice"
    assert "notes_repo_git_status" not in names
    assert "calendar_today" in names, "the others stay"
    assert call.is_error
    assert "no tool 'notes_repo_git_status'" in text(call)
    assert not daemon.calls, "neither service was called"


def test_a_client_of_the_initialize_handshake_is_told_too(sock_dir: Path) -> None:
    socket = sock_dir / "airlock.sock"
    seen: list[str] = []

    async def main() -> None:
        changed = asyncio.Event()

        async def on_message(message: Any) -> None:
            method = str(getattr(getattr(message, "root", message), "method", ""))
            seen.append(method)
            if method == "notifications/tools/list_changed":
                changed.set()

        airlock = AirlockClient(socket, approval_wait=1)
        server = build_server(airlock, watch_every=0.1)
        client = mcp.Client(server, message_handler=on_message, mode="legacy")
        async with airlock, client as session:
            await session.list_tools()
            with running(socket), anyio.fail_after(20):
                await changed.wait()

    asyncio.run(main())
    assert "notifications/tools/list_changed" in seen


def test_request_access_tool_then_the_service_tool_uses_that_session(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> tuple[CallToolResult, CallToolResult]:
        granted = await session.call_tool(
            "airlock_request_access",
            {"services": ["calendar", "gmail"], "reason": "plan my day", "ttl": "30m"},
        )
        return granted, await session.call_tool("calendar_today", {})

    granted, today = with_mcp(daemon.socket, body)
    session = structured(granted)["session"]
    assert session["services"] == ["calendar", "gmail"]
    assert set(session) == {"id", "services", "access", "expires_at"}
    assert structured(today)["untrusted_content_from"] == "calendar"
    (req,) = daemon.requests
    assert (req.body.reason, req.body.ttl) == ("plan my day", "30m")


def test_a_write_tool_gets_its_own_approval_for_its_exact_parameters(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> CallToolResult:
        return await session.call_tool("gmail_mark_read", {"id": "3.9"})

    result = structured(with_mcp(daemon.socket, body))
    assert result["result"]["echo"] == {"id": "3.9"}
    (write,) = daemon.requests
    assert write.body.access == "write"
    assert write.body.operation is not None
    assert (write.body.operation.name, write.body.operation.params) == ("mark_read", {"id": "3.9"})
    assert write.body.reason == "MCP tool gmail_mark_read called by the agent"


def test_bad_arguments_come_back_from_the_daemon_as_a_tool_error(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> list[CallToolResult]:
        return [
            await session.call_tool("gmail_list_messages", {"limit": 5000}),
            await session.call_tool("airlock_request_access", {"services": []}),
            await session.call_tool("no_such_tool", {}),
        ]

    daemon_refused, bad_args, unknown = with_mcp(daemon.socket, body)
    assert daemon_refused.is_error
    assert "limit: Input should be less than or equal to 100" in text(daemon_refused)
    assert bad_args.is_error
    assert "bad arguments" in text(bad_args)
    assert unknown.is_error
    assert "no tool 'no_such_tool' (hint: airlock_status lists the services)" in text(unknown)


# -- the names earlier Airlock users configured ---------------------------------------


def test_compatibility_tools_map_to_the_mail_operations(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> list[CallToolResult]:
        return [
            await session.call_tool("airlock_list_emails", {"service": "gmail", "limit": 5}),
            await session.call_tool(
                "airlock_search_emails", {"service": "gmail", "query": "from:alice"}
            ),
            await session.call_tool("airlock_get_email", {"service": "gmail", "message_id": "7.1"}),
            await session.call_tool("airlock_count_unread", {"service": "work-mail"}),
        ]

    results = [structured(r) for r in with_mcp(daemon.socket, body)]
    assert [(c.service, c.operation, c.params) for c in daemon.calls] == [
        ("gmail", "list_messages", {"limit": 5}),
        ("gmail", "search", {"query": "from:alice"}),
        ("gmail", "get_message", {"id": "7.1"}),
        ("work-mail", "count_unread", {}),
    ]
    assert results[3]["result"] == 3
    assert all(r["note"] == UNTRUSTED_NOTE for r in results)


def test_the_mail_service_may_be_left_out_only_when_there_is_one(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> CallToolResult:
        return await session.call_tool("airlock_count_unread", {})

    ambiguous = with_mcp(daemon.socket, body)
    assert ambiguous.is_error
    assert "say which service: one of gmail, work-mail" in text(ambiguous)

    daemon.services = [s for s in SERVICES if s.name != "work-mail"]
    assert structured(with_mcp(daemon.socket, body))["untrusted_content_from"] == "gmail"


# -- status and secrecy --------------------------------------------------------------


def test_status_shows_services_and_held_sessions_but_never_a_token(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> list[CallToolResult]:
        return [
            await session.call_tool("gmail_count_unread", {}),
            await session.call_tool(
                "airlock_request_access", {"services": ["calendar"], "reason": "r"}
            ),
            await session.call_tool("airlock_status", {}),
            await session.call_tool("gmail_mark_read", {"id": "1.1"}),
        ]

    results = with_mcp(daemon.socket, body)
    status = structured(results[2])
    assert status["daemon"]["version"] == "0.1.0"
    assert status["services"]["gmail"][0] == "gmail_count_unread"
    assert [s["services"] for s in status["sessions_held"]] == [["calendar"], ["gmail"]]
    everything = "".join(text(r) + json.dumps(r.structured_content) for r in results)
    assert daemon.tokens or daemon.revoked
    for secret in [*daemon.tokens, *(r.claim for r in daemon.requests)]:
        assert secret not in everything
    assert "alk_" not in everything


def test_the_sessions_are_revoked_when_the_server_stops(daemon: FakeDaemon) -> None:
    async def body(session: mcp.Client) -> None:
        await session.call_tool("gmail_count_unread", {})

    with_mcp(daemon.socket, body)
    assert len(daemon.revoked) == 1
    assert daemon.sessions == {}


# -- a real stdio subprocess ------------------------------------------------------------


def test_the_stdio_server_in_a_subprocess(daemon: FakeDaemon, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AIRLOCK_HOME": str(tmp_path),
        "AIRLOCK_SOCKET": str(daemon.socket),
        "AIRLOCK_MCP__APPROVAL_WAIT": "7",
    }
    params = mcp.StdioServerParameters(command=sys.executable, args=["-m", "airlock.mcp"], env=env)
    progress: list[float | None] = []

    async def note(done: float, total: float | None, message: str | None) -> None:
        progress.append(total)

    async def main() -> tuple[set[str], CallToolResult]:
        async with mcp.Client(params) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            result = await session.call_tool(
                "airlock_list_emails", {"service": "gmail"}, progress_callback=note
            )
            return names, result

    names, result = asyncio.run(main())
    assert {"airlock_status", "gmail_list_messages", "work-mail_search"} <= names
    assert structured(result)["untrusted_content_from"] == "gmail"
    assert progress
    assert progress[0] == 7.0
    (req,) = daemon.requests
    assert req.body.reason == "MCP tool airlock_list_emails called by the agent"
    assert len(daemon.revoked) == 1  # the server revoked its session when stdin closed


# -- airlock mcp config ---------------------------------------------------------------


def test_mcp_config_prints_an_absolute_command_and_the_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRLOCK_HOME", str(tmp_path))
    monkeypatch.delenv("AIRLOCK_SOCKET", raising=False)
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = CliState(get_plugin_manager())

    mcp_cli.register(app)
    result = CliRunner().invoke(app, ["mcp", "config", "--name", "mail"])
    assert result.exit_code == 0, result.output
    server = json.loads(result.stdout)["mcpServers"]["mail"]
    assert Path(server["command"]).is_absolute()
    assert Path(server["command"]).exists()
    assert server["env"] == {
        "AIRLOCK_SOCKET": str(tmp_path / "run" / "airlock.sock"),
        "AIRLOCK_HOME": str(tmp_path),
    }
    assert "claude mcp add mail" in result.stderr


def test_sigterm_stops_the_stdio_server_and_revokes_its_session(
    daemon: FakeDaemon, tmp_path: Path
) -> None:
    env = {**os.environ, "AIRLOCK_HOME": str(tmp_path), "AIRLOCK_SOCKET": str(daemon.socket)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlock.mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None

    def rpc(message: dict[str, Any]) -> dict[str, Any] | None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        proc.stdin.flush()
        if "id" not in message:
            return None
        answer: dict[str, Any] = json.loads(proc.stdout.readline())
        return answer

    try:
        hello = rpc(
            {
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw-test", "version": "1"},
                },
            }
        )
        assert hello is not None
        assert hello["result"]["serverInfo"]["name"] == "airlock"
        rpc({"method": "notifications/initialized"})
        called = rpc(
            {
                "id": 2,
                "method": "tools/call",
                "params": {"name": "gmail_count_unread", "arguments": {}},
            }
        )
        assert called is not None
        assert called["result"]["structuredContent"]["result"] == 3
        assert daemon.requests[0].body.agent == "raw-test (MCP)"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
    assert len(daemon.revoked) == 1


def test_the_module_fallback_does_not_import_from_the_folder_it_is_started_in(
    tmp_path: Path,
) -> None:
    """Without the ``airlock-mcp`` script, ``airlock mcp config`` names ``python ... -m``:
    an MCP client starting it in a folder another user can write to (``/tmp``) must not
    run a planted ``airlock`` package as the person."""
    planted = tmp_path / "airlock"
    planted.mkdir()
    marker = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env = {**os.environ, "AIRLOCK_HOME": str(tmp_path / "home")}
    env.pop("PYTHONPATH", None)
    subprocess.run(
        [sys.executable, *mcp_cli.MODULE_ARGS],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert not marker.exists(), "the server imported a package from its working directory"
