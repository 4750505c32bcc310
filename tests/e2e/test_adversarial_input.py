"""What a hostile agent sends the daemon's socket: odd framing, huge or deeply nested bodies,
extreme dates, floods of connections. Each case runs against a real daemon process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import mcp
from daemon_harness import Airlock

from airlock.client import AirlockClient
from airlock.mcp.server import build_server

REQUEST_HEAD = b'{"services": ["mail"], '
REQUEST_TAIL = b'"reason": "summarise my inbox"}'


def error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body: dict[str, str] = response.json()["error"]
    assert body["code"]
    assert body["message"]
    return body


def slowly(*parts: bytes) -> Iterator[bytes]:
    """A chunked body whose later chunks arrive after the daemon has read the first."""
    for index, part in enumerate(parts):
        if index:
            time.sleep(0.2)
        yield part


# -- bodies are read whole, whatever the framing ------------------------------------------


def test_a_300_kb_body_is_read_whole(airlock: Airlock) -> None:
    # Valid JSON (whitespace between tokens), more than a socket buffer's worth, sent
    # with a Content-Length and arriving in two parts as a busy sender's would.
    padding = b" " * 300_000
    length = str(len(REQUEST_HEAD) + len(padding) + len(REQUEST_TAIL))
    with airlock.client() as agent:
        response = agent.post(
            "/v1/requests",
            content=slowly(REQUEST_HEAD + padding, REQUEST_TAIL),
            headers={"Content-Length": length},
        )
    assert response.status_code == 202, response.text
    assert response.json()["code"]


def test_a_chunked_body_is_read_across_its_chunks(airlock: Airlock) -> None:
    with airlock.client() as agent:
        response = agent.post("/v1/requests", content=slowly(REQUEST_HEAD, REQUEST_TAIL))
    assert response.status_code == 202, response.text


def test_bytes_after_the_json_in_a_later_chunk_are_a_400(airlock: Airlock) -> None:
    with airlock.client() as agent:
        response = agent.post(
            "/v1/requests", content=slowly(REQUEST_HEAD + REQUEST_TAIL, b' {"x": 1}')
        )
        assert error(response, 400)["field"] == "body"
        assert agent.get("/v1/requests").json()["requests"] == []


def test_a_chunked_body_over_1_mib_is_a_413(airlock: Airlock) -> None:
    padding = [b" " * 65536] * 17  # 1.06 MiB
    with airlock.client() as agent:
        response = agent.post("/v1/requests", content=slowly(REQUEST_HEAD, *padding, REQUEST_TAIL))
        assert error(response, 413)["code"] == "payload_too_large"
        assert agent.get("/v1/requests").json()["requests"] == []


# -- nesting and dates that crash parsers -------------------------------------------------


def test_deeply_nested_json_is_a_400_naming_where(airlock: Airlock) -> None:
    with airlock.client() as agent:
        huge = b'{"services": ["mail"], "reason": "x", "agent": ' + b"[" * 100_000
        huge += b"]" * 100_000 + b"}"
        assert error(agent.post("/v1/requests", content=huge), 400)["field"] == "body"
        token = airlock.session(agent)["token"]
        deep = b'{"params": {"query": ' + b"[" * 500 + b"]" * 500 + b"}}"
        response = agent.post(
            "/v1/ops/mail/search", content=deep, headers={"Authorization": f"Bearer {token}"}
        )
        assert error(response, 400)["field"] == "params"
        assert agent.get("/v1/status").status_code == 200


def test_an_audit_since_outside_the_calendar_is_a_400_naming_since(airlock: Airlock) -> None:
    with airlock.client() as owner:
        for since in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999999d"):
            response = owner.get("/v1/audit", params={"since": since})
            assert error(response, 400)["field"] == "since", since
        assert owner.get("/v1/audit", params={"since": "7d"}).status_code == 200


def test_durations_int_cannot_read_are_a_400_naming_the_field(airlock: Airlock) -> None:
    # "²" and "①" are digits to str.isdigit, not to int(); 5,000 digits are over int()'s
    # limit: each was a 500.
    with airlock.client() as agent:
        for ttl in ("²", " 3² ", "①"):
            body = {"services": ["mail"], "reason": "x", "ttl": ttl}
            assert error(agent.post("/v1/requests", json=body), 400)["field"] == "ttl", ttl
        assert agent.get("/v1/requests").json()["requests"] == []
        response = agent.get("/v1/audit", params={"since": "9" * 5000})
        assert error(response, 400)["field"] == "since"


# -- a typed TOTP code never travels in argv or the environment ---------------------------


def _connected(pid: int) -> bool:
    return any(target.startswith("socket:") for target in _fd_targets(pid))


def _fd_targets(pid: int) -> Iterator[str]:
    """What the process's open descriptors point at (one closed meanwhile is skipped)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            yield os.readlink(fd)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(entry.partition("=")[::2] for entry in raw.split("\0") if entry)


def test_the_code_is_read_from_stdin_and_never_visible_in_proc(airlock: Airlock) -> None:
    """An agent of the same uid reads every process's cmdline and environ: the code a
    person types must not be there while the CLI waits for a (here: stopped) daemon."""
    with airlock.client() as agent:
        created = airlock.request(agent)
    code = airlock.phone.code()
    argv = [sys.executable, "-m", "airlock", "approve", created["code"]]
    assert airlock.proc is not None
    airlock.proc.send_signal(signal.SIGSTOP)  # a slow daemon: the CLI waits on the socket
    try:
        typed, stdin = os.pipe()
        os.write(stdin, f"{code}\n".encode())
        os.close(stdin)
        cli = subprocess.Popen(
            argv, env=airlock.env, stdin=typed, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        os.close(typed)
        deadline = time.monotonic() + 30
        while not _connected(cli.pid):
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "the CLI never connected"
            time.sleep(0.05)
        cmdline = Path(f"/proc/{cli.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        environ = _environ(cli.pid)
        assert cli.poll() is None, "the CLI must still be waiting while it is inspected"
    finally:
        airlock.proc.send_signal(signal.SIGCONT)
    assert [arg.decode() for arg in cmdline] == argv
    assert code not in b"".join(cmdline).decode()
    assert [name for name, value in environ.items() if code in value] == [
        name
        for name, value in airlock.env.items()
        if code in value  # a coincidence only
    ]
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert out.decode().strip() == f"approved {created['code']}"


def test_an_old_script_passing_totp_is_told_how_to_pass_the_code(airlock: Airlock) -> None:
    with airlock.client() as agent:
        created = airlock.request(agent)
        for args in (
            ("approve", created["code"], "--totp", "123456"),
            ("approve", created["code"], "--totp=123456"),
            ("credentials", "get", "mail", "password", "--totp", "123456"),
            ("totp", "reset", "--totp", "123456"),
        ):
            refused = airlock.cli(*args)
            assert refused.returncode == 2, args
            assert "--totp is no longer accepted" in refused.stderr
            assert "first line of stdin" in refused.stderr
            assert "123456" not in refused.stderr + refused.stdout
        pending = agent.get("/v1/requests").json()["requests"]
        assert [r["code"] for r in pending] == [created["code"]]


# -- agent text reaches the person's terminal only through the prompt's sanitiser ---------

HOSTILE_REASON = (
    "\x1b[2J\x1b[H"  # clear the screen
    "\x1b]0;owned\x07"  # set the window title
    "WRITE ALL MAIL\rread inbox"  # overwrite the start of the row
    "\u202egnp.exe\u202c"  # bidi override
    "zero\u200bwidth\u2060joiner\ufeff"  # invisible characters
    "\x9b31m"  # a C1 control sequence introducer
    "\nCODE  uid 0  forged row\n" + "A" * 800
)
HOSTILE_AGENT = "\x1b]0;x\x07\u202eclaude\rroot\u200b\n"


def unsafe_characters(text: str) -> list[str]:
    """Control and format characters a terminal would act on (a newline ends a line)."""
    return sorted(
        {
            f"U+{ord(char):04X}"
            for char in text
            if char != "\n" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
        }
    )


def test_every_listing_shows_agent_text_through_the_prompts_sanitiser(airlock: Airlock) -> None:
    with airlock.client() as agent:
        airlock.session(agent, reason=HOSTILE_REASON, agent=HOSTILE_AGENT)
        airlock.request(agent, reason=HOSTILE_REASON, agent=HOSTILE_AGENT)
    for command in (["pending"], ["sessions"], ["audit"], ["status"]):
        shown = airlock.cli(*command)
        assert shown.returncode == 0, (command, shown.stderr)
        text = shown.stdout + shown.stderr
        assert unsafe_characters(text) == [], (command, unsafe_characters(text))
        assert "A" * 300 not in text, f"{command}: agent text is not length-limited"
        assert "forged row" not in "".join(
            line for line in text.splitlines() if line.startswith("CODE")
        ), f"{command}: agent text started a line of its own"
    pending = airlock.cli("pending").stdout.splitlines()
    assert len(pending) == 2, pending  # the heading and one row: no forged rows
    assert "WRITE ALL MAIL read inbox" in pending[1]
    audit = airlock.cli("audit").stdout
    assert "owned" in audit  # visible as plain text, not acted on
    for command in (["pending"], ["sessions"], ["audit"], ["status"]):
        shown = airlock.cli(*command, "--json")
        assert shown.returncode == 0, (command, shown.stderr)
        assert unsafe_characters(shown.stdout) == [], command
        json.loads(shown.stdout)  # exact JSON, escaped by the encoder
    listed = json.loads(airlock.cli("pending", "--json").stdout)
    assert listed[0]["reason"] == HOSTILE_REASON
    assert listed[0]["agent"] == HOSTILE_AGENT
    records = json.loads(airlock.cli("audit", "--json", "--event", "access_requested").stdout)
    assert records[0]["agent"] == HOSTILE_AGENT


def test_an_error_naming_a_hostile_field_is_sanitised(airlock: Airlock) -> None:
    """The daemon names the offending field in a 400; the CLI prints it safely."""
    first = subprocess.Popen(
        [sys.executable, "-m", "airlock", "run", "mail", "count_unread"],
        env=airlock.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with airlock.client() as person:
        deadline = time.monotonic() + 30
        while not (waiting := person.get("/v1/requests").json()["requests"]):
            assert time.monotonic() < deadline, "no request appeared"
            time.sleep(0.1)
        assert airlock.approve(person, waiting[0]["code"]).status_code == 200
    assert first.wait(timeout=60) == 0  # the session is cached for the next run
    shown = airlock.cli("run", "mail", "list_messages", "-p", '{"\\u001b[2J\\u202ex": 1}')
    assert shown.returncode == 2, shown.stderr
    assert "error: params." in shown.stderr
    assert unsafe_characters(shown.stderr) == [], unsafe_characters(shown.stderr)


# -- a flood of idle and half-sent connections leaves room for the person -----------------

FD_LIMIT = 256
WITH_FD_LIMIT = (
    "import os, resource, sys;"
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, {FD_LIMIT}));"
    "os.execv(sys.argv[1], sys.argv[1:])"
)
HALF_SENT = b"POST /v1/requests HTTP/1.1\r\nHost: airlock\r\nContent-Le"


class Flood(threading.Thread):
    """Opens connections as fast as the daemon takes them, idle or with half a request,
    and keeps the newest *held* of them open, until stopped."""

    def __init__(self, socket_path: Path, held: int = 400) -> None:
        super().__init__(daemon=True)
        self.path = str(socket_path)
        self.open: deque[socket.socket] = deque()
        self.held = held
        self.opened = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            conn = socket.socket(socket.AF_UNIX)
            conn.settimeout(1)
            try:
                conn.connect(self.path)
                if self.opened % 2:
                    conn.sendall(HALF_SENT)
            except OSError:
                conn.close()
                continue
            self.opened += 1
            self.open.append(conn)
            while len(self.open) > self.held:
                self.open.popleft().close()
            time.sleep(0.002)  # the machine is shared: a steady flood, not a spin

    def finish(self) -> list[socket.socket]:
        self.stop.set()
        self.join(timeout=10)
        return list(self.open)


def closed_by_the_daemon(conn: socket.socket, deadline: float) -> bool:
    conn.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        while conn.recv(65536):
            pass  # an error answer, then the close
    except TimeoutError:
        return False
    except OSError:
        return True  # reset by the daemon
    return True


def test_a_connection_flood_leaves_room_for_approve_and_revoke(tmp_path: Path) -> None:
    airlock = Airlock(
        tmp_path / "flooded",
        overrides={"daemon": {"idle_timeout": "3s", "max_connections_per_uid": 32}},
    )
    airlock.daemon.command = [sys.executable, "-c", WITH_FD_LIMIT, *airlock.daemon.command]
    airlock.start()
    try:
        with airlock.client() as agent:
            created = airlock.request(agent)
            airlock.session(agent, ttl="90m")  # not the same ask (that would join it)
        assert airlock.proc is not None
        flood = Flood(airlock.paths.socket)
        flood.start()
        try:
            while flood.opened < 2 * FD_LIMIT:  # more than the daemon has descriptors
                assert flood.is_alive()
                time.sleep(0.05)
            daemon_fds = len(os.listdir(f"/proc/{airlock.proc.pid}/fd"))
            approved = subprocess.run(
                [sys.executable, "-m", "airlock", "approve", created["code"]],
                env=airlock.env,
                input=airlock.phone.code() + "\n",
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            revoked = subprocess.run(
                [sys.executable, "-m", "airlock", "revoke", "--all"],
                env=airlock.env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        finally:
            left_open = flood.finish()
        assert approved.returncode == 0, approved.stderr
        assert revoked.returncode == 0, revoked.stderr
        # The request approved under the flood was not collected: revoke-all cancels it too.
        assert revoked.stdout.strip() == (
            "revoked 1 session(s), cancelled 1 approved request(s) not yet collected"
        )
        assert daemon_fds < FD_LIMIT - 32, daemon_fds
        # What the flood still holds is closed by the daemon once idle for 3 s.
        deadline = time.monotonic() + 3 + 5
        still_open = [c for c in left_open if not closed_by_the_daemon(c, deadline)]
        for conn in left_open:
            conn.close()
        assert still_open == [], f"{len(still_open)} of {len(left_open)} connections still open"
        with airlock.client() as agent:
            assert agent.get("/v1/status").status_code == 200
    finally:
        airlock.stop()


def test_a_body_that_stops_arriving_is_a_408(start_airlock: Callable[..., Airlock]) -> None:
    airlock = start_airlock({"daemon": {"idle_timeout": "2s"}})
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(15)
        conn.connect(str(airlock.paths.socket))
        conn.sendall(
            b"POST /v1/requests HTTP/1.1\r\nHost: airlock\r\nContent-Type: application/json"
            b"\r\nContent-Length: 100\r\n\r\n" + REQUEST_HEAD
        )
        answer = b""
        while not answer.endswith(b"}}"):  # the whole JSON answer (the close comes later)
            received = conn.recv(65536)
            assert received, answer
            answer += received
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer
    assert waited < 10, waited
    with airlock.client() as agent:
        assert agent.get("/v1/requests").json()["requests"] == []


# -- arguments are checked before the person is asked ------------------------------------


def test_an_mcp_call_with_bad_arguments_is_refused_before_any_prompt(airlock: Airlock) -> None:
    async def main() -> list[tuple[bool, str]]:
        client = AirlockClient(airlock.paths.socket, approval_wait=1)
        async with client, mcp.Client(build_server(client)) as agent:
            calls = [
                ("mail_list_messages", {"limit": 100_000}),
                ("mail_list_messages", {"colour": "red"}),
                ("mail_search", {"query": {"nested": ["not", "a", "string"]}}),
            ]
            results = [await agent.call_tool(name, args) for name, args in calls]
        return [
            (r.is_error, r.content[0].text if r.content[0].type == "text" else "") for r in results
        ]

    refused = asyncio.run(main())
    assert [error for error, _ in refused] == [True, True, True], refused
    assert "params.limit" in refused[0][1]
    assert "params.colour" in refused[1][1]
    with airlock.client() as person:
        assert person.get("/v1/requests").json()["requests"] == []
    assert "Airlock: access request" not in airlock.daemon.log.read_text()
    records = json.loads(airlock.cli("audit", "--json", "--event", "access_requested").stdout)
    assert records == []


def test_airlock_run_with_bad_parameters_asks_nobody(airlock: Airlock) -> None:
    shown = airlock.cli("run", "mail", "list_messages", "-p", '{"limit": 100000}', "--wait", "1")
    assert shown.returncode == 2, shown.stderr
    assert "params.limit" in shown.stderr
    with airlock.client() as person:
        assert person.get("/v1/requests").json()["requests"] == []


# -- the socket is the person's alone in personal mode -------------------------------------


def test_the_socket_is_private_in_personal_mode(airlock: Airlock) -> None:
    assert airlock.paths.mode.value == "personal"
    socket_mode = airlock.paths.socket.stat().st_mode
    assert stat.S_ISSOCK(socket_mode)
    assert stat.S_IMODE(socket_mode) == 0o600, oct(stat.S_IMODE(socket_mode))
    assert stat.S_IMODE(airlock.paths.socket.parent.stat().st_mode) == 0o700


# -- a crash during a vault write leaves nothing behind -----------------------------------


def test_a_vault_temp_file_left_by_a_crash_is_removed_at_start(tmp_path: Path) -> None:
    airlock = Airlock(tmp_path / "crashed")
    vault = airlock.paths.vault_file
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    crashed = vault.with_name(f".{vault.name}.{pid_max + 1}.tmp")  # no such process
    writing = vault.with_name(f".{vault.name}.{os.getpid()}.tmp")  # a live writer
    for leftover in (crashed, writing):
        leftover.write_bytes(b"AIRLOCK-VAULT ciphertext of an unfinished write")
        leftover.chmod(0o600)
    airlock.start()
    try:
        assert not crashed.exists(), "the crashed write's temp file is still there"
        assert writing.exists(), "a live writer's temp file must not be taken away"
    finally:
        airlock.stop()
        writing.unlink()
