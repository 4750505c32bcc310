"""The person and the agent through the `airlock` command, against a real daemon."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

from daemon_harness import Airlock


def start_cli(airlock: Airlock, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "airlock", *args],
        env=airlock.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def pending_code(airlock: Airlock) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = json.loads(airlock.cli("pending", "--json").stdout)
        if listed:
            code: str = listed[0]["code"]
            return code
        time.sleep(0.1)
    raise AssertionError("no request appeared")


def test_request_then_approve_on_the_terminal(airlock: Airlock) -> None:
    agent = start_cli(airlock, "request", "mail", "--reason", "weekly summary", "--json")
    code = pending_code(airlock)
    approved = airlock.cli("approve", code, stdin=airlock.phone.code() + "\n")
    assert approved.returncode == 0, approved.stderr
    out, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, err
    grant = json.loads(out)
    assert grant["token"].startswith("alk_")
    assert f"airlock approve {code}" in err
    sessions = json.loads(airlock.cli("sessions", "--json").stdout)
    assert [s["id"] for s in sessions] == [grant["id"]]
    assert airlock.cli("revoke", "--all").stdout.strip() == "revoked 1 session(s)"
    assert json.loads(airlock.cli("sessions", "--json").stdout) == []


def test_the_totp_code_can_come_from_stdin(airlock: Airlock) -> None:
    agent = start_cli(airlock, "request", "mail", "--reason", "r")
    code = pending_code(airlock)
    assert airlock.cli("approve", code, stdin=airlock.phone.code() + "\n").returncode == 0
    assert agent.wait(timeout=60) == 0


def test_a_denied_request_exits_3(airlock: Airlock) -> None:
    agent = start_cli(airlock, "request", "mail", "--reason", "r")
    code = pending_code(airlock)
    assert airlock.cli("deny", code).returncode == 0
    _, err = agent.communicate(timeout=60)
    assert agent.returncode == 3
    assert "denied" in err


def test_an_unanswered_request_exits_4(airlock: Airlock) -> None:
    result = airlock.cli("request", "mail", "--reason", "r", "--wait", "1")
    assert result.returncode == 4
    assert "airlock approve" in result.stderr


def test_a_wrong_code_is_an_error_and_the_request_stays(airlock: Airlock) -> None:
    agent = start_cli(airlock, "request", "mail", "--reason", "r")
    code = pending_code(airlock)
    wrong = airlock.cli("approve", code, stdin="000000\n")
    assert wrong.returncode == 1
    assert "error:" in wrong.stderr
    assert pending_code(airlock) == code
    airlock.cli("deny", code)
    agent.wait(timeout=60)


def test_run_asks_once_then_uses_the_cached_session(airlock: Airlock) -> None:
    first = start_cli(airlock, "run", "mail", "count_unread", "-p", '{"folder": "INBOX"}')
    code = pending_code(airlock)
    airlock.cli("approve", code, stdin=airlock.phone.code() + "\n")
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert json.loads(out)["unread"] == 3
    cache = next((airlock.home / "cache").glob("sessions-*.json"))
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    again = airlock.cli("run", "mail", "list_messages", "-p", '{"limit": 2}')
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)["messages"]) == 2
    assert json.loads(airlock.cli("pending", "--json").stdout) == []


def test_run_with_bad_params_is_a_usage_error(airlock: Airlock) -> None:
    result = airlock.cli("run", "mail", "count_unread", "-p", "[1, 2")
    assert result.returncode == 2
    assert "JSON object" in result.stderr


def test_no_daemon_exits_5(tmp_path: Path) -> None:
    env_home = tmp_path / "nothing"
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "pending"],
        env={"AIRLOCK_HOME": str(env_home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 5
    assert "airlock serve" in result.stderr
