"""What a new user tripped over on the command line, against a real daemon: listing a
service's operations, performing a write, a config edited under a running daemon,
credentials for a connector that takes none, and the original README's commands."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from daemon_harness import Airlock, remember
from test_cli_flow import pending_code, start_cli


def test_services_lists_each_operation_with_access_params_and_description(
    airlock: Airlock,
) -> None:
    result = airlock.cli("services", "--json")
    assert result.returncode == 0, result.stderr
    (mail,) = json.loads(result.stdout)
    assert (mail["name"], mail["connector"], mail["health"]) == ("mail", "maildir", "ok")
    ops = {op["name"]: op for op in mail["operations"]}
    assert ops["list_messages"]["access"] == "read"
    assert ops["mark_read"]["access"] == "write"
    assert ops["list_messages"]["description"].startswith("List messages")
    limit = next(p for p in ops["list_messages"]["params"] if p["name"] == "limit")
    assert (limit["type"], limit["default"], limit["required"]) == ("integer", 20, False)
    text = airlock.cli("services", "mail")
    assert text.returncode == 0, text.stderr
    assert "mark_read" in text.stdout
    assert "write" in text.stdout
    missing = airlock.cli("services", "nope")
    assert missing.returncode != 0
    assert "no service named 'nope'" in missing.stderr


def unread_id(airlock: Airlock) -> str:
    with airlock.client() as client:
        token = airlock.session(client)["token"]
        listed = airlock.op(client, token, "list_messages", unread_only=True).json()
    message_id: str = listed["result"]["messages"][0]["id"]
    return message_id


def test_run_of_a_write_asks_for_that_exact_call_and_runs_it_once(airlock: Airlock) -> None:
    message_id = unread_id(airlock)
    params = json.dumps({"id": message_id})
    agent = start_cli(airlock, "run", "mail", "mark_read", "-p", params, "--wait", "60")
    code = pending_code(airlock)
    (pending,) = json.loads(airlock.cli("pending", "--json").stdout)
    assert pending["access"] == "write"
    assert pending["operation"]["name"] == "mark_read"
    assert pending["operation"]["params"]["id"] == message_id
    assert airlock.cli("approve", code, stdin=airlock.phone.code() + "\n").returncode == 0
    out, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, err
    assert f'mail.mark_read {{"id": "{message_id}"}}' in err
    assert json.loads(out)["ok"] is True
    ran = json.loads(airlock.cli("audit", "--event", "operation", "--json").stdout)
    assert [e["op"] for e in ran if e.get("op") == "mark_read"] == ["mark_read"]


def test_a_config_edited_under_the_daemon_says_reload(airlock: Airlock) -> None:
    config_file = airlock.home / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["services"]["archive"] = {"connector": "maildir", "path": str(airlock.maildir)}
    config_file.write_text(yaml.safe_dump(config))
    status = airlock.cli("status")
    assert "config changed since start: run airlock reload" in (status.stdout)
    assert "archive" in status.stdout
    assert "not loaded by the running daemon" in status.stdout
    run = airlock.cli("run", "archive", "count_unread", "--wait", "1")
    assert run.returncode != 0
    assert "no service named 'archive'" in run.stderr
    assert "config changed since start: run airlock reload" in run.stderr


def test_credentials_add_for_a_connector_without_credentials_says_so(airlock: Airlock) -> None:
    result = airlock.cli("credentials", "add", "mail", stdin="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mail takes no credentials: nothing to store"
    assert "TOTP" not in result.stderr


def test_the_original_readme_commands_still_work(airlock: Airlock) -> None:
    token = remember("123456:e2e-bot-token-from-the-old-readme")
    added = airlock.cli(
        "credentials",
        "add",
        "telegram",
        "bot_token",
        stdin=f"{airlock.phone.code()}\nbot_token={token}\n",
    )
    assert added.returncode == 0, added.stderr
    assert "saved bot_token for telegram" in added.stdout
    got = airlock.cli("credentials", "get", "telegram", "bot_token", stdin=airlock.phone.code())
    assert got.returncode == 0, got.stderr
    assert got.stdout == token + "\n"
    unknown = airlock.cli("credentials", "add", "telegram", "api_key", stdin="")
    assert unknown.returncode == 2
    assert "bot_token" in unknown.stderr
    for args in (("audit", "today"), ("audit", "--service", "mail", "--last", "7d")):
        listed = airlock.cli(*args, "--json")
        assert listed.returncode == 0, listed.stderr
        assert isinstance(json.loads(listed.stdout), list)


def test_asking_again_for_the_same_thing_joins_the_pending_request(airlock: Airlock) -> None:
    first = airlock.cli("request", "mail", "--reason", "weekly summary", "--wait", "1")
    assert first.returncode == 4
    (waiting,) = json.loads(airlock.cli("pending", "--json").stdout)
    assert f"airlock approve {waiting['code']}" in first.stderr
    agent = start_cli(airlock, "request", "mail", "--reason", "weekly summary", "--json")
    deadline = time.monotonic() + 20
    while (
        "access_request_joined"
        not in airlock.cli("audit", "--event", "access_request_joined").stdout
    ):
        assert time.monotonic() < deadline, "the second ask did not join"
        time.sleep(0.1)
    assert [r["code"] for r in json.loads(airlock.cli("pending", "--json").stdout)] == [
        waiting["code"]
    ]
    approved = airlock.cli("approve", waiting["code"], stdin=airlock.phone.code() + "\n")
    assert approved.returncode == 0, approved.stderr
    out, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, err
    assert json.loads(out)["services"] == ["mail"]


def test_only_the_latest_asker_collects_and_other_asks_are_new_requests(
    airlock: Airlock,
) -> None:
    with airlock.client() as client:
        one = airlock.request(client, reason="first")
        two = airlock.request(client, reason="again")
        assert (two["id"], two["code"], two["fingerprint"]) == (
            one["id"],
            one["code"],
            one["fingerprint"],
        )
        assert two["claim"] != one["claim"]
        write = airlock.request(client, access="write")
        longer = airlock.request(client, ttl="8h")
        assert len({one["id"], write["id"], longer["id"]}) == 3
        assert airlock.approve(client, one["code"]).status_code == 200
        stale = client.get(f"/v1/requests/{one['id']}", headers={"X-Airlock-Claim": one["claim"]})
        assert stale.status_code == 403
        fresh = client.get(f"/v1/requests/{two['id']}", headers={"X-Airlock-Claim": two["claim"]})
        assert fresh.json()["status"] == "approved"
        remember(fresh.json()["session"]["token"])


class _OtherVersion(http.server.BaseHTTPRequestHandler):
    """A daemon of another Airlock version: it answers, in a shape this client cannot read."""

    def do_GET(self) -> None:
        body = b'{"version": "9.9"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:  # a Unix socket's peer has no host
        return "unix"

    def log_message(self, format: str, *args: object) -> None:
        return


def test_services_says_a_daemon_that_answers_runs(tmp_path: Path) -> None:
    """A daemon whose answers this client cannot read (another version) is not reported as
    "not running": what it answered, and the hint, are shown instead. (Here, not in
    tests/core: the service needs airlock-mail's connector installed.)"""
    (tmp_path / "config.yaml").write_text(
        f"services: {{mail: {{connector: maildir, path: {tmp_path}}}}}\n"
    )
    for part in ("cur", "new", "tmp", "run"):
        (tmp_path / part).mkdir(mode=0o700)
    server = socketserver.ThreadingUnixStreamServer(
        str(tmp_path / "run" / "airlock.sock"), _OtherVersion
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "airlock", "services", "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "AIRLOCK_HOME": str(tmp_path)},
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    health = json.loads(result.stdout)[0]["health"]
    assert "not running" not in health
    assert "unexpected answer from the daemon" in health
    assert "different Airlock versions" in health
