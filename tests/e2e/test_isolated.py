"""Isolated mode installed for real (root; CI runs these, a non-root run skips them):
``airlock service install --isolated`` then ``airlock service start``, with real users —
an agent and the person (both in airlock-agents) and an outsider (not) — and the two
service users: the core ``airlock`` and the connector host ``airlock-connectors``.

The install (the slow part: a program copy under /opt) happens once for the module; it
imports the person's personal-mode Airlock, so the audit chain spans both modes.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import yaml
from daemon_harness import TotpPhone, machine_lock, needs_root, remember
from isolated_harness import (
    AGENT,
    CLIENT,
    HOST_KEEPER_PID,
    HOST_SOCKET,
    HOST_USER,
    OUTSIDER,
    PERSON,
    SOCKET,
    TEST_USERS,
    Isolated,
    as_user,
    build_wheels,
    enrol_personal,
    leftovers,
    make_user,
    python_as,
    run_as,
    scrub,
    shared_maildir,
    spawn_as,
    spawn_python_as,
    stall_service,
)

from airlock.service.supervisor import process_uid

CORE_TREES = (Path("/etc/airlock"), Path("/var/lib/airlock"), Path("/var/log/airlock"))
HOST_TREES = (Path("/var/lib/airlock-connectors"), Path("/var/log/airlock-connectors"))
PRIVATE_TREES = CORE_TREES + HOST_TREES


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Isolated]:
    needs_root()
    with machine_lock():  # /opt/airlock is test_service_program.py's too
        yield from _installed(tmp_path_factory)


def _installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Isolated]:
    if leftovers():
        pytest.fail(
            f"this machine already has isolated-mode parts, not touching them: {leftovers()}"
        )
    mail = shared_maildir()
    setup = Isolated(tmp_path_factory.mktemp("root-config"), mail)
    uninstall: subprocess.CompletedProcess[str] | None = None
    remaining: list[str] = []
    try:
        make_user(AGENT)
        make_user(PERSON)
        make_user(OUTSIDER)
        setup.phone = enrol_personal(PERSON, setup.root_config)
        wheels = build_wheels(tmp_path_factory.mktemp("wheels"))
        setup.install_output = setup.ok(
            "service", "install", "--isolated", "--agent-user", AGENT, "--agent-user", PERSON,
            "--wheels", str(wheels), "--import-personal", PERSON,
        )  # fmt: skip
        setup.ok("service", "start")
        # As the person would: edit the config while the daemon runs, then reload.
        config = Path("/etc/airlock/config.yaml")
        settings = yaml.safe_load(config.read_text())
        settings["services"] = {"mail": {"connector": "maildir", "path": str(mail)}}
        settings["services"]["stuck"] = stall_service(mail.parent)
        config.write_text(yaml.safe_dump(settings))
        # The connector host (not the core) reads and writes the services' files.
        owner = f"{HOST_USER}:{HOST_USER}"
        subprocess.run(["chown", "-R", owner, str(mail.parent)], check=True)
        assert "services mail" in setup.ok("reload")
        yield setup
    finally:
        uninstall = setup.root("service", "uninstall", "--isolated")
        remaining = [item for item in leftovers() if not any(u in item for u in TEST_USERS)]
        for user in TEST_USERS:
            subprocess.run(["userdel", "--remove", user], capture_output=True, check=False)
        shutil.rmtree(mail.parent, ignore_errors=True)
        scrub()
    assert uninstall is not None
    assert uninstall.returncode == 0, uninstall.stdout + uninstall.stderr
    assert not remaining, f"uninstall left these behind: {remaining}"
    assert not leftovers(), f"the test left these behind: {leftovers()}"


def phone(setup: Isolated) -> TotpPhone:
    assert setup.phone is not None
    return setup.phone


# -- what the install did -------------------------------------------------------------


def test_install_reports_each_step_and_a_second_install_changes_nothing(
    isolated: Isolated, tmp_path: Path
) -> None:
    first = isolated.install_output
    assert "created system user and group airlock" in first
    assert f"added {AGENT} in airlock-agents" in first
    assert "installing a copy of airlock into /opt/airlock/venv" in first
    assert "moved the audit log" in first

    wheels = build_wheels(tmp_path / "wheels")
    again = isolated.ok(
        "service", "install", "--isolated", "--agent-user", AGENT, "--wheels", str(wheels)
    )
    assert "created" not in again, again
    assert "wrote" not in again, again
    assert "kept system user and group airlock" in again
    assert "/opt/airlock/venv already has the same airlock distributions: kept" in again
    assert "kept /etc/systemd/system/airlock.service" in again
    assert "created system user and group airlock-connectors" in first
    assert "created /run/airlock-connectors (airlock-connectors:airlock 2750)" in first
    assert "added connector_host in /etc/airlock/config.yaml" in first
    assert "kept system user and group airlock-connectors" in again
    assert "kept /etc/systemd/system/airlock-connectors.service" in again
    assert "kept connector_host in /etc/airlock/config.yaml" in again


def test_ownership_and_modes_of_what_was_installed(isolated: Isolated) -> None:
    def owner(path: Path) -> tuple[str, str, int]:
        import grp

        st = path.stat()
        return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, st.st_mode & 0o7777

    assert owner(Path("/etc/airlock")) == ("root", "airlock", 0o750)
    assert owner(Path("/etc/airlock/config.yaml")) == ("root", "airlock", 0o640)
    assert owner(Path("/var/lib/airlock")) == ("airlock", "airlock", 0o700)
    assert owner(Path("/var/lib/airlock/totp.key"))[::2] == ("airlock", 0o600)
    assert owner(Path("/run/airlock")) == ("airlock", "airlock-agents", 0o750)
    assert owner(SOCKET) == ("airlock", "airlock-agents", 0o660)
    daemon = isolated.daemon_pid()
    assert process_uid(daemon) == pwd.getpwnam("airlock").pw_uid
    assert owner(Path("/var/lib/airlock-connectors")) == (HOST_USER, HOST_USER, 0o700)
    assert owner(Path("/var/log/airlock-connectors")) == (HOST_USER, HOST_USER, 0o700)
    # setgid: the socket takes the core's group from its directory, not by membership.
    assert owner(Path("/run/airlock-connectors")) == (HOST_USER, "airlock", 0o2750)
    assert owner(HOST_SOCKET)[:2] == (HOST_USER, "airlock")
    assert owner(HOST_SOCKET)[2] & 0o777 == 0o660
    import grp

    assert "airlock" not in grp.getgrnam(HOST_USER).gr_mem
    assert HOST_USER not in grp.getgrnam("airlock").gr_mem
    for path in Path("/var/lib/airlock-connectors").rglob("*"):
        found = owner(path)
        assert found[0] == HOST_USER, path
        assert found[2] & 0o077 == 0, f"{path} is open to others: {found[2]:o}"
    host = _host_pids(isolated)
    for pid in host.values():
        assert process_uid(pid) == pwd.getpwnam(HOST_USER).pw_uid
    config = yaml.safe_load(Path("/etc/airlock/config.yaml").read_text())
    assert config["connector_host"] == {"socket": str(HOST_SOCKET), "timeout": 30}


def test_the_person_s_personal_copies_were_moved_out(isolated: Isolated) -> None:
    data = Path(pwd.getpwnam(PERSON).pw_dir) / ".local/share/airlock"
    assert not (data / "totp.key").exists()
    assert not (data / "audit").exists()
    assert not (data / "audit.key").exists()


# -- what an agent can and cannot do --------------------------------------------------


def _walk(tops: tuple[Path, ...]) -> tuple[list[str], list[str]]:
    """Every file and folder under *tops*, as root sees them."""
    files: list[str] = []
    folders: list[str] = []
    for top in tops:
        for here, _, names in os.walk(top):
            folders.append(here)
            files.extend(os.path.join(here, n) for n in names)
    return files, folders


def _try_everything(files: list[str], folders: list[str]) -> Callable[[], dict[str, list[str]]]:
    """Open each file and list each folder; what succeeded."""

    def attempt() -> dict[str, list[str]]:
        opened, listed = [], []
        for path in files:
            try:
                with open(path, "rb") as handle:
                    handle.read(1)
                opened.append(path)
            except PermissionError:
                pass
        for path in folders:
            try:
                os.listdir(path)
                listed.append(path)
            except PermissionError:
                pass
        return {"opened": opened, "listed": listed}

    return attempt


def _connect(path: Path) -> Callable[[], str]:
    def attempt() -> str:
        with socket.socket(socket.AF_UNIX) as conn:
            try:
                conn.connect(str(path))
            except PermissionError:
                return "EACCES"
        return "connected"

    return attempt


def test_no_test_user_reads_any_file_under_the_private_directories(isolated: Isolated) -> None:
    files, folders = _walk(PRIVATE_TREES)
    assert "/var/lib/airlock/totp.key" in files
    assert "/var/lib/airlock/audit.key" in files
    for user in (AGENT, PERSON, OUTSIDER):
        assert as_user(user, _try_everything(files, folders)) == {"opened": [], "listed": []}, user


def _reach(pid: int, *, kill: bool = True) -> Callable[[], dict[str, str]]:
    """What a process may do to *pid*: kill it (unless *kill* is False), attach to it,
    read its memory and its environment."""

    def attack() -> dict[str, str]:
        found: dict[str, str] = {}
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
                found["kill"] = "sent"
            except PermissionError:
                found["kill"] = "EPERM"
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        attached = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
        found["ptrace"] = "attached" if attached == 0 else errno.errorcode[ctypes.get_errno()]
        if attached == 0:
            libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
        for name in ("mem", "environ"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as handle:
                    handle.read(1)
                found[name] = "read"
            except PermissionError:
                found[name] = "EACCES"
            except OSError as exc:  # opened: offset 0 of the memory is not mapped
                found[name] = "read" if exc.errno == errno.EIO else errno.errorcode[exc.errno]
        return found

    return attack


def test_an_agent_cannot_signal_ptrace_or_read_the_daemon_s_memory(isolated: Isolated) -> None:
    pid = isolated.daemon_pid()
    assert as_user(AGENT, _reach(pid)) == {
        "kill": "EPERM",
        "ptrace": "EPERM",
        "mem": "EACCES",
        "environ": "EACCES",
    }
    assert isolated.daemon_pid() == pid
    assert Path(f"/proc/{pid}").exists()


def test_no_process_of_their_own_users_reads_the_daemon_s_or_the_host_s_memory(
    isolated: Isolated,
) -> None:
    """A `command` server of the MCP proxy runs as the host's user, and anything else
    started as ``airlock`` as the daemon's: neither may attach to the process holding the
    service credentials or the TOTP secret, nor read its memory or environment, even where
    no Yama stops it (both make themselves non-dumpable)."""
    host = _host_pids(isolated)["host"]
    daemon = isolated.daemon_pid()
    refused = {"ptrace": "EPERM", "mem": "EACCES", "environ": "EACCES"}
    assert as_user(HOST_USER, _reach(host, kill=False)) == refused
    assert as_user("airlock", _reach(daemon, kill=False)) == refused
    assert _host_pids(isolated)["host"] == host
    assert isolated.daemon_pid() == daemon


def test_an_airlock_command_waiting_for_a_code_is_closed_to_its_own_user(
    isolated: Isolated,
) -> None:
    """``airlock approve`` reading the person's code: another process of the person's
    (an agent running as them) cannot attach to it or read its memory to take the code."""
    waiting = spawn_as(PERSON, "approve", "ABCD")
    try:
        deadline = time.monotonic() + 60
        while Path(f"/proc/{waiting.pid}/wchan").read_text() not in _READING_A_PIPE:
            assert waiting.poll() is None, waiting.communicate()
            assert time.monotonic() < deadline, "airlock approve never read its stdin"
            time.sleep(0.05)
        found = as_user(PERSON, _reach(waiting.pid, kill=False))
    finally:
        waiting.kill()
        waiting.communicate()
    assert found == {"ptrace": "EPERM", "mem": "EACCES", "environ": "EACCES"}


_READING_A_PIPE = ("pipe_read", "anon_pipe_read")


def test_only_members_of_airlock_agents_reach_the_socket(isolated: Isolated) -> None:
    assert as_user(OUTSIDER, _connect(SOCKET)) == "EACCES"
    assert as_user(AGENT, _connect(SOCKET)) == "connected"
    refused = run_as(OUTSIDER, "status", "--json")
    assert json.loads(refused.stdout)["daemon"]["running"] is False


# -- the whole flow across users ------------------------------------------------------


def _agent_http(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One HTTP call to the daemon from the agent's uid."""

    def call() -> dict[str, Any]:
        transport = httpx.HTTPTransport(uds=str(SOCKET))
        with httpx.Client(transport=transport, base_url="http://airlock", timeout=30) as c:
            response = c.request(method, path, **kwargs)
        return {
            "status": response.status_code,
            "body": response.json() if response.content else None,
        }

    answer: dict[str, Any] = as_user(AGENT, call)
    return answer


def _approved_session(setup: Isolated, **body: Any) -> dict[str, Any]:
    body.setdefault("services", ["mail"])
    body.setdefault("reason", "summarise my inbox")
    created = _agent_http("POST", "/v1/requests", json=body)
    assert created["status"] == 202, created
    request = created["body"]
    remember(request["claim"])
    approved = run_as(PERSON, "approve", request["code"], stdin=phone(setup).code() + "\n")
    assert approved.returncode == 0, approved.stderr
    state = _agent_http(
        "GET", f"/v1/requests/{request['id']}", headers={"X-Airlock-Claim": request["claim"]}
    )
    assert state["body"]["status"] == "approved", state
    session: dict[str, Any] = state["body"]["session"]
    remember(session["token"])
    return session


def _op(token: str, operation: str, **params: Any) -> dict[str, Any]:
    return _agent_http(
        "POST",
        f"/v1/ops/mail/{operation}",
        json={"params": params},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_request_approve_read_write_revoke_and_audit_across_users(isolated: Isolated) -> None:
    found = run_as(AGENT, "status", "--json")
    assert found.returncode == 0, found.stderr
    facts = json.loads(found.stdout)
    assert facts["socket"] == str(SOCKET)
    assert facts["daemon"]["running"] is True
    assert facts["daemon"]["mode"] == "isolated"

    client = python_as(
        AGENT,
        "import asyncio\n"
        "from airlock.mcp.settings import mcp_client\n"
        "async def main():\n"
        "    async with mcp_client() as airlock:\n"
        "        print((await airlock.status()).mode)\n"
        "asyncio.run(main())\n",
    )
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip() == "isolated"

    read = _approved_session(isolated)
    listed = _op(read["token"], "list_messages", unread_only=True)
    assert listed["status"] == 200, listed
    target = listed["body"]["result"]["messages"][0]["id"]
    assert _op(read["token"], "mark_read", id=target)["status"] == 403

    operation = {"service": "mail", "name": "mark_read", "params": {"id": target}}
    write = _approved_session(isolated, operation=operation, reason="tidy up")
    assert _op(write["token"], "mark_read", id=target)["status"] == 200

    revoked = _agent_http("DELETE", f"/v1/sessions/{read['id']}")
    assert revoked["status"] == 200, revoked
    assert _op(read["token"], "count_unread")["status"] == 401

    refused = run_as(AGENT, "reload")
    assert refused.returncode != 0
    assert "only the owner of the daemon (or root) may reload it" in refused.stderr

    verified = isolated.root("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    agent_uid = pwd.getpwnam(AGENT).pw_uid
    events = [
        json.loads(line)
        for part in sorted(Path("/var/lib/airlock/audit").glob("audit*.jsonl"))
        for line in part.read_text().splitlines()
    ]
    by_agent = {e["event"] for e in events if e.get("uid") == agent_uid}
    assert {"access_requested", "operation", "session_revoked"} <= by_agent
    # The chain began in personal mode: the person's enrolment is its first part.
    kinds = [e["event"] for e in events]
    assert kinds.index("totp_enrolled") < kinds.index("daemon_started")


def test_root_enrols_a_new_secret_into_the_service_s_state(isolated: Isolated) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlock", "totp", "reset"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "XDG_"))},
            "XDG_CONFIG_HOME": str(isolated.root_config),
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    proc.stdin.write(phone(isolated).code() + "\n")  # the current secret's code first
    proc.stdin.flush()
    uri = proc.stdout.readline().strip()
    assert uri.startswith("otpauth://"), uri + proc.communicate(timeout=60)[1]
    # Codes are accepted once per time step, whichever secret made them.
    new_phone = TotpPhone(remember(pyotp.parse_uri(uri).secret), phone(isolated).last_step)
    out, err = proc.communicate(new_phone.code() + "\n", timeout=60)
    assert proc.returncode == 0, out + err
    isolated.phone = new_phone
    airlock_uid = pwd.getpwnam("airlock").pw_uid
    for path in Path("/var/lib/airlock").rglob("*"):
        assert path.stat().st_uid == airlock_uid, f"{path} is not the service user's"
    # The daemon (as airlock) reads the new secret: an approval with the new app works.
    session = _approved_session(isolated)
    assert _op(session["token"], "count_unread")["status"] == 200


# -- the connector host: what each service user can reach -----------------------------


def _host_pids(setup: Isolated) -> dict[str, int]:
    """The connector host's pid and its keeper's, from ``airlock service status``."""
    facts = json.loads(setup.ok("service", "status", "--json"))[HOST_USER]
    assert facts["running"] is True, facts
    assert facts["keeper_pid"] == int(HOST_KEEPER_PID.read_text())
    return {"host": facts["pid"], "keeper": facts["keeper_pid"]}


def test_the_host_s_user_reads_no_file_of_the_core_s_and_cannot_reach_its_socket(
    isolated: Isolated,
) -> None:
    files, folders = _walk(CORE_TREES)
    secrets = {"/var/lib/airlock/totp.key", "/var/lib/airlock/audit.key"}
    assert secrets | {"/var/lib/airlock/state.db", "/etc/airlock/config.yaml"} <= set(files)
    assert as_user(HOST_USER, _try_everything(files, folders)) == {"opened": [], "listed": []}
    assert as_user(HOST_USER, _connect(SOCKET)) == "EACCES"


def test_the_core_s_user_reads_no_file_of_the_host_s(isolated: Isolated) -> None:
    files, folders = _walk(HOST_TREES)
    assert "/var/lib/airlock-connectors/vault.key" in files
    assert as_user("airlock", _try_everything(files, folders)) == {"opened": [], "listed": []}


def test_only_the_core_reaches_the_host_and_no_agent_can_signal_it(isolated: Isolated) -> None:
    assert as_user("airlock", _connect(HOST_SOCKET)) == "connected"
    for user in (AGENT, PERSON, OUTSIDER):
        assert as_user(user, _connect(HOST_SOCKET)) == "EACCES", user
    pids = _host_pids(isolated)

    def signal_them() -> list[str]:
        found = []
        for pid in pids.values():
            try:
                os.kill(pid, 0)
                found.append("allowed")
            except PermissionError:
                found.append("EPERM")
        return found

    assert as_user(AGENT, signal_them) == ["EPERM", "EPERM"]


CALL = """\
import httpx, json, sys
token = sys.stdin.readline().strip()
transport = httpx.HTTPTransport(uds={socket!r})
with httpx.Client(transport=transport, base_url="http://airlock", timeout=90) as client:
    answer = client.post({path!r}, json={{"params": {params!r}}},
                         headers={{"Authorization": "Bearer " + token}})
print(json.dumps({{"status": answer.status_code, "body": answer.json()}}))
"""


def _until(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def test_a_host_killed_mid_operation_gives_a_clean_error_an_audit_record_and_comes_back(
    isolated: Isolated,
) -> None:
    marks = isolated.mail.parent / "marks"
    session = _approved_session(isolated, services=["stuck"], reason="stall, then die")
    before = _host_pids(isolated)
    code = CALL.format(socket=str(SOCKET), path="/v1/ops/stuck/stall", params={"tag": "kill-1"})
    agent = spawn_python_as(AGENT, code)
    try:
        assert agent.stdin is not None
        with agent.stdin as feed:
            feed.write(session["token"] + "\n")
        agent.stdin = None  # given and closed: communicate() has nothing to send
        # The connector is inside the operation once its server left the mark.
        _until((marks / "kill-1").exists, "the stalling tool was called")
        os.kill(before["host"], signal.SIGKILL)
        killed = time.monotonic()
        out, err = agent.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0, err
    answer = json.loads(out)
    assert answer["status"] in (502, 504), answer
    assert answer["body"]["error"]["code"], answer
    assert answer["body"]["error"]["message"], answer
    # Answered when the host died, not after connector_host.timeout (30 s) ran out.
    assert took < 20, f"the agent waited {took:.1f} s"

    _until(
        lambda: (
            json.loads(isolated.ok("service", "status", "--json"))[HOST_USER]["pid"]
            not in (None, before["host"])
        ),
        "the keeper started a new host",
    )
    after = _host_pids(isolated)
    assert after["keeper"] == before["keeper"]
    assert after["host"] != before["host"]
    _until(HOST_SOCKET.exists, "the new host listens")
    pong = _agent_http(
        "POST",
        "/v1/ops/stuck/ping",
        json={"params": {}},
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    assert pong["status"] == 200, pong
    mail = _approved_session(isolated)
    assert _op(mail["token"], "count_unread")["status"] == 200

    agent_uid = pwd.getpwnam(AGENT).pw_uid
    events = [
        json.loads(line)
        for part in sorted(Path("/var/lib/airlock/audit").glob("audit*.jsonl"))
        for line in part.read_text().splitlines()
    ]
    stalls = [
        e
        for e in events
        if e.get("event") == "operation" and e.get("uid") == agent_uid and e.get("op") == "stall"
    ]
    assert stalls, "no audit record of the operation the host died in"
    assert stalls[-1]["outcome"] == "error", stalls[-1]


# -- the person replaces the secret from their own account, through the daemon --------


def _airlock_as(name: str, *args: str) -> subprocess.Popen[str]:
    """``airlock ARGS`` as user *name*, talking back and forth on stdin and stdout."""
    entry = pwd.getpwnam(name)
    return subprocess.Popen(
        [str(CLIENT), *args],
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=os.getgrouplist(name, entry.pw_gid),
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": entry.pw_dir, "LANG": "C.UTF-8"},
        cwd=entry.pw_dir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_person_replaces_the_secret_with_a_code_and_no_sudo(isolated: Isolated) -> None:
    before = Path("/var/lib/airlock/totp.key").read_text().strip()
    proc = _airlock_as(PERSON, "totp", "reset")
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(phone(isolated).code() + "\n")
    proc.stdin.flush()
    uri = proc.stdout.readline().strip()
    assert uri.startswith("otpauth://"), uri + proc.communicate(timeout=60)[1]
    new_phone = TotpPhone(remember(pyotp.parse_uri(uri).secret), phone(isolated).last_step)
    # Until the person's code of the new secret comes back, the old secret rules.
    assert Path("/var/lib/airlock/totp.key").read_text().strip() == before
    stray = _agent_http("POST", "/v1/totp/confirm", json={"id": "rst_guess", "totp": "123456"})
    assert stray["status"] == 404, stray
    out, err = proc.communicate(new_phone.code() + "\n", timeout=60)
    assert proc.returncode == 0, out + err
    isolated.phone = new_phone
    assert Path("/var/lib/airlock/totp.key").read_text().strip() == new_phone.secret
    airlock_uid = pwd.getpwnam("airlock").pw_uid
    for path in Path("/var/lib/airlock").rglob("*"):
        assert path.stat().st_uid == airlock_uid, f"{path} is not the service user's"
    person_uid = pwd.getpwnam(PERSON).pw_uid
    events = [
        json.loads(line)
        for part in sorted(Path("/var/lib/airlock/audit").glob("audit*.jsonl"))
        for line in part.read_text().splitlines()
    ]
    mine = [e for e in events if e.get("uid") == person_uid]
    assert {"totp_reset_started", "totp_enrolled"} <= {e["event"] for e in mine}
    assert not any(new_phone.secret in json.dumps(e) for e in events)
    session = _approved_session(isolated)
    assert _op(session["token"], "count_unread")["status"] == 200


def test_an_agent_cannot_make_the_first_enrolment(isolated: Isolated) -> None:
    key = Path("/var/lib/airlock/totp.key")
    aside = key.with_name("totp.key.test-aside")
    os.replace(key, aside)  # as if root had not enrolled yet
    try:
        facts = json.loads(run_as(AGENT, "status", "--json").stdout)
        assert facts["daemon"]["totp_enrolled"] is False
        refused = run_as(AGENT, "totp", "setup", stdin="123456\n")
        assert refused.returncode != 0
        assert "only root may enrol the first one" in refused.stderr, refused.stderr
        direct = _agent_http("POST", "/v1/totp/reset", json={"totp": "123456"})
        assert direct["status"] == 409, direct
        assert direct["body"]["error"]["code"] == "totp_not_enrolled"
        assert not key.exists()
    finally:
        os.replace(aside, key)
    assert json.loads(run_as(AGENT, "status", "--json").stdout)["daemon"]["totp_enrolled"]
