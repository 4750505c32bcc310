"""A session token is bound to the uid that asked for it (CI runs as root: a second real
user presents a stolen token)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import Airlock, leaked_secrets

from airlock.testing import skip_or_fail_under_ci

OTHER_USER = "airlock-e2e"


def call_as(uid: int, socket_path: Path, token: str) -> tuple[int, dict[str, Any]]:
    """POST an operation from a forked child that has become *uid* (no exec needed)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to the other user, speak HTTP/1.1 on the socket
        try:
            os.close(read_end)
            os.setgid(pwd.getpwuid(uid).pw_gid)
            os.setuid(uid)
            request = (
                "POST /v1/ops/mail/count_unread HTTP/1.1\r\nHost: airlock\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
            )
            with socket.socket(socket.AF_UNIX) as conn:
                conn.connect(str(socket_path))
                conn.sendall(request.encode())
                answer = b"".join(iter(lambda: conn.recv(65536), b""))
            os.write(write_end, answer)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(body)


def _needs_root() -> None:
    if os.geteuid() != 0:
        skip_or_fail_under_ci("needs root to create and switch to a second real user")


@pytest.fixture
def other_uid() -> int:
    _needs_root()
    try:
        return pwd.getpwnam(OTHER_USER).pw_uid
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
            check=True,
        )
        return pwd.getpwnam(OTHER_USER).pw_uid


@pytest.fixture
def shared_airlock(other_uid: int) -> Iterator[Airlock]:
    root = Path(tempfile.mkdtemp(prefix="airlock-e2e-"))
    root.chmod(0o711)
    airlock = Airlock(root / "home", overrides={"daemon": {"allowed_uids": [other_uid]}})
    airlock.home.chmod(0o711)
    airlock.start()
    # What group membership gives in isolated mode: the other user may reach the socket.
    airlock.paths.run_dir.chmod(0o711)
    airlock.paths.socket.chmod(0o666)
    try:
        yield airlock
    finally:
        airlock.stop()
        leaks = leaked_secrets(airlock.home)
        shutil.rmtree(root, ignore_errors=True)
    assert not leaks, f"secrets leaked into logs or audit lines: {leaks}"


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
