"""A session token is bound to the uid that asked for it (CI runs as root: a second real
user presents a stolen token)."""

from __future__ import annotations

import grp
import json
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import Airlock, as_uid, exchange, leaked_secrets

from conftest import OTHER_USER

SOCKET_GROUP = "airlock-e2e-socket"
AS_GROUP = (
    "import os, sys; os.setgid(int(sys.argv[1])); os.setgroups([]);"
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def call_as(uid: int, socket_path: Path, token: str) -> tuple[int, dict[str, Any]]:
    """POST an operation from a forked child that has become *uid* (no exec needed)."""
    request = (
        "POST /v1/ops/mail/count_unread HTTP/1.1\r\nHost: airlock\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    answer = as_uid(uid, lambda: exchange(socket_path, request.encode()))
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(body)


def test_a_token_presented_by_another_uid_is_refused(
    shared_airlock: Airlock, other_uid: int
) -> None:
    with shared_airlock.client() as agent:
        token = shared_airlock.session(agent)["token"]
        assert shared_airlock.op(agent, token, "count_unread").status_code == 200
    status, body = call_as(other_uid, shared_airlock.paths.socket, token)
    assert status == 403
    assert body["error"]["message"] == "this session belongs to another user"
    log = (shared_airlock.paths.audit_dir / "audit.jsonl").read_text()
    assert token not in log


def test_a_uid_outside_allowed_uids_is_refused(shared_airlock: Airlock) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    status, body = call_as(nobody, shared_airlock.paths.socket, "alk_" + "A" * 43)
    assert status == 403
    assert f"uid {nobody} may not use this Airlock" in body["error"]["message"]


@pytest.fixture
def socket_group(other_uid: int) -> Iterator[int]:
    """A group of the daemon's own (as the `airlock` group in isolated mode); removed after."""
    subprocess.run(["groupadd", "--system", SOCKET_GROUP], check=True)
    try:
        yield grp.getgrnam(SOCKET_GROUP).gr_gid
    finally:
        subprocess.run(["groupdel", SOCKET_GROUP], check=False)


@pytest.fixture
def isolated_airlock(socket_group: int) -> Iterator[Airlock]:
    """A daemon in isolated mode whose group is *socket_group*, with no ``allowed_uids``."""
    root = Path(tempfile.mkdtemp(prefix="airlock-e2e-"))
    root.chmod(0o711)
    airlock = Airlock(root / "home")
    airlock.home.chmod(0o711)
    airlock.daemon.env["AIRLOCK_MODE"] = "isolated"
    command = airlock.daemon.command
    airlock.daemon.command = [sys.executable, "-c", AS_GROUP, str(socket_group), *command]
    airlock.start()
    try:
        yield airlock
    finally:
        airlock.stop()
        leaks = leaked_secrets(airlock.home)
        shutil.rmtree(root, ignore_errors=True)
    assert not leaks, f"secrets leaked into logs or audit lines: {leaks}"


def test_by_default_only_the_owner_root_and_the_socket_group_get_in(
    isolated_airlock: Airlock, other_uid: int, socket_group: int
) -> None:
    sock = isolated_airlock.paths.socket
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660, oct(sock.stat().st_mode)
    assert sock.stat().st_gid == socket_group
    # Let the file modes admit anyone, so what is tested is the daemon's own uid rule.
    isolated_airlock.paths.run_dir.chmod(0o711)
    sock.chmod(0o666)
    forged = "alk_" + "A" * 43
    nobody = pwd.getpwnam("nobody").pw_uid
    for outsider in (nobody, other_uid):
        status, body = call_as(outsider, sock, forged)
        assert status == 403, body
        assert f"uid {outsider} may not use this Airlock" in body["error"]["message"]
    subprocess.run(["usermod", "-aG", SOCKET_GROUP, OTHER_USER], check=True)
    try:
        status, body = call_as(other_uid, sock, forged)
    finally:
        subprocess.run(["gpasswd", "-d", OTHER_USER, SOCKET_GROUP], check=False)
    assert status == 401, body  # past the uid rule: only the forged token is refused
