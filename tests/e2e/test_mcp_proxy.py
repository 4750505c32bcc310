"""Any MCP server behind Airlock, through a real daemon: the npm filesystem server (real
read and write tools) and a small Python server that leaks its environment and crashes.
The agent sees the tools, reads after a session approval, writes only with the approval
of that exact call, never sees the server's secret; neither do the log or the audit."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import mcp
import pytest
from daemon_harness import Airlock, needs_landlock, remember
from test_mcp_e2e import approved, data
from tests.mcp_proxy.servers import filesystem_server

from airlock.client import AirlockClient
from airlock.mcp.server import build_server

TOY = Path(__file__).parents[1] / "mcp_proxy" / "toy_server.py"


def op(
    agent: httpx.Client, token: str, service: str, tool: str, /, **params: Any
) -> httpx.Response:
    return agent.post(
        f"/v1/ops/{service}/{tool}",
        json={"params": params},
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
def served(tmp_path: Path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "notes.txt").write_text("buy milk\n")
    return folder


@pytest.fixture
def airlock(start_airlock: Callable[..., Airlock], served: Path) -> Airlock:
    node_argv = filesystem_server()
    return start_airlock(
        {
            "services": {
                "files": {"connector": "mcp", "command": [*node_argv, str(served)]},
                "toy": {
                    "connector": "mcp",
                    "command": [sys.executable, str(TOY)],
                    "env": {"TOY_TOKEN": "{credentials.token}"},
                    "timeout": 30,
                },
            }
        }
    )


def test_tools_listed_read_after_approval_and_a_write_once_with_its_own(
    airlock: Airlock, served: Path
) -> None:
    listed = {s["name"]: s for s in json.loads(airlock.cli("services", "--json").stdout)}
    ops = {o["name"]: o for o in listed["files"]["operations"]}
    assert ops["read_text_file"]["access"] == "read"
    assert ops["write_file"]["access"] == "write"
    assert {"name": "path", "type": "string", "required": True}.items() <= (
        ops["read_text_file"]["params"][0].items()
    )
    shown = airlock.cli("services", "files").stdout
    assert "write_file" in shown
    assert "params: path" in shown

    with airlock.client() as agent:
        catalogue = agent.get("/v1/services").json()["services"]
        (files,) = [s for s in catalogue if s["name"] == "files"]
        assert "list_directory" in {o["name"] for o in files["operations"]}

        read = airlock.session(agent, services=["files"], reason="read my notes")["token"]
        notes = op(agent, read, "files", "read_text_file", path=str(served / "notes.txt"))
        assert notes.status_code == 200, notes.text
        assert notes.json()["result"]["content"][0]["text"] == "buy milk\n"

        target = str(served / "todo.txt")
        refused = op(agent, read, "files", "write_file", path=target, content="x")
        assert refused.status_code == 403
        write = airlock.session(agent, services=["files"], access="write", reason="w")["token"]
        unapproved = op(agent, write, "files", "write_file", path=target, content="x")
        assert unapproved.json()["error"]["code"] == "approval_required"
        assert not Path(target).exists()

        call = {"path": target, "content": "call the dentist"}
        operation = {"service": "files", "name": "write_file", "params": call}
        approved = airlock.session(
            agent, services=["files"], operation=operation, reason="note a todo"
        )["token"]
        other = op(agent, approved, "files", "write_file", path=target, content="rm -rf")
        assert other.json()["error"]["code"] == "approval_required"
        done = op(agent, approved, "files", "write_file", **call)
        assert done.status_code == 200, done.text
        assert Path(target).read_text() == "call the dentist"
        twice = op(agent, approved, "files", "write_file", **call)
        assert twice.json()["error"]["code"] == "approval_required"

    audit = (airlock.paths.audit_dir / "audit.jsonl").read_text()
    writes = [
        json.loads(line)
        for line in audit.splitlines()
        if '"op":"write_file"' in line.replace(" ", "")
    ]
    assert [w["outcome"] for w in writes if w["event"] == "operation"] == ["ok"]


def test_schema_invalid_arguments_are_refused_before_anyone_is_asked(airlock: Airlock) -> None:
    with airlock.client() as agent:
        for params, field in [
            ({"content": "x"}, "params.path"),
            ({"path": 7, "content": "x"}, "params.path"),
            ({"path": "a", "content": "x", "mode": "0777"}, "params.mode"),
        ]:
            operation = {"service": "files", "name": "write_file", "params": params}
            response = agent.post(
                "/v1/requests",
                json={"services": ["files"], "reason": "x", "operation": operation},
            )
            assert response.status_code == 400, response.text
            assert response.json()["error"]["field"] == field
        assert agent.get("/v1/requests").json()["requests"] == []
    assert "request_created" not in (airlock.paths.audit_dir / "audit.jsonl").read_text()


def test_text_that_is_not_unicode_is_a_400_naming_where(airlock: Airlock) -> None:
    """A lone surrogate (JSON allows the escape; no UTF-8 text holds it) in a tool's
    parameter is refused as bad input: it was a 500, from whatever tried to encode it."""
    operation = (
        b'{"service":"files","name":"write_file","params":{"path":"a\\ud800.txt","content":"x"}}'
    )
    with airlock.client() as agent:
        token = airlock.session(agent, services=["files"])["token"]
        for path, body in [
            ("/v1/requests", b'{"services":["files"],"reason":"x","operation":%b}' % operation),
            ("/v1/ops/files/read_text_file", b'{"params":{"path":"\\udc80"}}'),
        ]:
            response = agent.post(
                path,
                content=body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 400, response.text
            assert "not valid Unicode" in response.json()["error"]["message"]
        assert agent.get("/v1/requests").json()["requests"] == []
        paired = agent.post(
            "/v1/ops/files/read_text_file",
            content=b'{"params":{"path":"notes \\ud83d\\ude00.txt"}}',
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        assert paired.status_code != 400, "a surrogate pair is one character, and fine"


def test_the_servers_secret_never_reaches_the_agent_the_log_or_the_audit(
    airlock: Airlock,
) -> None:
    secret = remember("tok_canary_5f1e2d3c4b5a69788796a5b4")  # conftest scans logs/audit
    listed = {s["name"]: s for s in json.loads(airlock.cli("services", "--json").stdout)}
    assert listed["toy"]["health"] == "no credentials: run `airlock credentials add toy`"
    added = airlock.cli(
        "credentials", "add", "toy", stdin=f"{airlock.phone.code()}\ntoken={secret}\n"
    )
    assert added.returncode == 0, added.stderr
    assert "connected: 7 tools" in added.stdout
    with airlock.client() as agent:
        token = airlock.session(agent, services=["toy"], reason="check env")["token"]
        echoed = op(agent, token, "toy", "show_env", name="TOY_TOKEN")
        assert echoed.status_code == 200, echoed.text
        assert "TOY_TOKEN=[secret]" in echoed.text, "the server had it; the agent sees a mask"
        assert secret not in echoed.text
        services = agent.get("/v1/services").text
        assert secret not in services
    log = airlock.daemon.log.read_text()
    assert "toy server up, token [secret]" in log, "the server's stderr is in the daemon log"
    assert secret not in log
    assert secret not in (airlock.paths.audit_dir / "audit.jsonl").read_text()


def test_a_server_reads_none_of_airlock_s_own_files(airlock: Airlock, served: Path) -> None:
    """The server runs as the connector host's user (here the person's): without
    confinement it could read the vault holding every service's credentials and its key,
    the TOTP secret (and approve its own requests), the audit key and the config."""
    needs_landlock()
    secret = remember("tok_canary_files_9c8b7a6d5e4f")
    added = airlock.cli(
        "credentials", "add", "toy", stdin=f"{airlock.phone.code()}\ntoken={secret}\n"
    )
    assert added.returncode == 0, added.stderr
    private = [
        airlock.paths.totp_file,
        airlock.paths.audit_key_file,
        airlock.paths.config_file,
        airlock.paths.connectors_dir / "vault.enc",
        airlock.paths.connectors_dir / "vault.key",
    ]
    assert all(path.is_file() for path in private), private
    with airlock.client() as agent:
        token = airlock.session(agent, services=["toy"], reason="read files")["token"]

        def read(path: Path) -> str:
            answer = op(agent, token, "toy", "read_file", path=str(path))
            assert answer.status_code == 200, answer.text
            return str(answer.json()["result"]["content"][0]["text"])

        assert read(served / "notes.txt") == "buy milk\n", "the server's own files it reads"
        for path in private:
            assert read(path) == "refused: Permission denied", path
    assert "runs unconfined" not in airlock.daemon.log.read_text()


def test_a_crashing_server_is_a_clean_error_and_starts_again(airlock: Airlock) -> None:
    secret = remember("tok_canary_crash_0a1b2c3d4e5f")
    added = airlock.cli(
        "credentials", "add", "toy", stdin=f"{airlock.phone.code()}\ntoken={secret}\n"
    )
    assert added.returncode == 0, added.stderr
    with airlock.client() as agent:
        token = airlock.session(agent, services=["toy"], reason="crash it")["token"]
        crashed = op(agent, token, "toy", "crash")
        assert crashed.status_code == 502, crashed.text
        assert crashed.json()["error"]["message"] == "toy.crash: the MCP server stopped"
        again = op(agent, token, "toy", "show_env", name="HOME")
        assert again.status_code == 200, again.text
    assert "Traceback" not in airlock.daemon.log.read_text()


def test_airlock_mcp_and_the_python_client_serve_the_listed_tools(
    airlock: Airlock, served: Path
) -> None:
    """The agent's side: `airlock mcp` offers files_* tools (writes not read-only) and
    runs them after approvals; AirlockClient has the tools as methods."""
    seen: list[dict[str, Any]] = []
    target = str(served / "plan.txt")
    notes = str(served / "notes.txt")

    async def agent() -> tuple[dict[str, Any], Any, Any, Any]:
        client = AirlockClient(airlock.paths.socket, approval_wait=20)
        async with client, mcp.Client(build_server(client)) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            read = await approved(
                airlock, session.call_tool("files_read_text_file", {"path": notes}), seen
            )
            call = {"path": target, "content": "plan"}
            wrote = await approved(airlock, session.call_tool("files_write_file", call), seen)
            direct = await client.files.list_directory(path=str(served))
            return tools, read, wrote, direct

    tools, read, wrote, direct = asyncio.run(agent())
    assert tools["files_write_file"].annotations is not None
    assert tools["files_write_file"].annotations.read_only_hint is False
    assert tools["files_read_text_file"].input_schema["required"] == ["path"]
    assert data(read)["untrusted_content_from"] == "files"
    assert data(read)["result"]["content"][0]["text"] == "buy milk\n"
    assert not data(wrote)["result"]["is_error"]
    assert Path(target).read_text() == "plan"
    read_request, write_request = seen
    assert (read_request["access"], write_request["access"]) == ("read", "write")
    assert write_request["operation"] == {
        "service": "files",
        "name": "write_file",
        "params": {"path": target, "content": "plan"},
    }
    assert "notes.txt" in direct["content"][0]["text"]


def test_a_parameter_name_cannot_paint_the_persons_terminal(
    start_airlock: Callable[..., Airlock],
) -> None:
    """`airlock services` prints each parameter's name, which an MCP server chooses."""
    hostile = Path(__file__).parents[1] / "mcp_proxy" / "hostile_server.py"
    command = [sys.executable, str(hostile)]
    airlock = start_airlock(
        {
            "services": {
                "odd": {"connector": "mcp", "command": command, "env": {"HOSTILE": "escape_params"}}
            }
        }
    )
    shown = airlock.cli("services", "odd")
    assert shown.returncode == 0, shown.stderr
    assert "note" in shown.stdout
    assert "params: to" in shown.stdout
    for raw in ("\x1b", "\x07", "\u009b", "\u202e"):
        assert raw not in shown.stdout, f"{raw!r} reached the terminal"


def test_a_secret_the_server_prints_on_stdout_stays_out_of_the_daemon_log(
    start_airlock: Callable[..., Airlock],
) -> None:
    """Stdout is the MCP channel: a line there that is not a message (a debug print,
    a broken message) is dropped by the MCP client, whose own log said so with the line
    in it, token and all, and a traceback, into the daemon log."""
    secret = remember("tok_canary_stdout_6e5d4c3b2a1f0e9d")
    hostile = Path(__file__).parents[1] / "mcp_proxy" / "hostile_server.py"
    env = {"HOSTILE": "stdout_noise", "TOY_TOKEN": "{credentials.token}"}
    airlock = start_airlock(
        {
            "services": {
                "noisy": {
                    "connector": "mcp",
                    "command": [sys.executable, str(hostile)],
                    "env": env,
                    "timeout": 30,
                }
            }
        }
    )
    added = airlock.cli(
        "credentials", "add", "noisy", stdin=f"{airlock.phone.code()}\ntoken={secret}\n"
    )
    assert added.returncode == 0, added.stderr
    with airlock.client() as agent:
        token = airlock.session(agent, services=["noisy"], reason="look up")["token"]
        for _ in range(2):
            answer = op(agent, token, "noisy", "lookup", key="x")
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["content"][0]["text"] == "done"
    log = airlock.daemon.log.read_text()
    assert secret not in log
    assert "Traceback" not in log
    assert secret[:20] not in log, "nor the start of it, where a message is cut"


def test_a_servers_regular_expression_cannot_stall_the_daemon(
    start_airlock: Callable[..., Airlock],
) -> None:
    """The daemon checks a call's arguments against the tool's schema before anything
    else: a `pattern` that backtracks without end on the agent's text held its event
    loop (every approval, every session) for as long as it ran."""
    hostile = Path(__file__).parents[1] / "mcp_proxy" / "hostile_server.py"
    command = [sys.executable, str(hostile)]
    airlock = start_airlock(
        {
            "services": {
                "trap": {"connector": "mcp", "command": command, "env": {"HOSTILE": "regex_trap"}}
            }
        }
    )
    with airlock.client() as agent:
        token = airlock.session(agent, services=["trap"], reason="find")["token"]
        answer = op(agent, token, "trap", "find", q="a" * 64 + "!")
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["content"][0]["text"] == "done"
