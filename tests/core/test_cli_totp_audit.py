"""``airlock totp setup|reset`` and ``airlock audit verify`` as a script drives them: a real
process on a temporary AIRLOCK_HOME, the URI on stdout's first line, codes on stdin."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyotp
import pytest

from airlock.errors import DaemonUnreachable, InvalidCode, NotEnrolled
from airlock.security.audit import query
from airlock.security.totp import load_secret
from airlock.security.vault import TotpKey, Vault


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "airlock", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AIRLOCK_HOME": str(home)},
    )


def run(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airlock", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "AIRLOCK_HOME": str(home)},
        timeout=60,
        check=False,
    )


def enrol(home: Path, *args: str, before: str = "", right: bool = True) -> tuple[int, str, str]:
    """Drive the non-TTY protocol; returns (exit code, new secret or "", stderr)."""
    child = start(home, "totp", *args)
    assert child.stdin is not None
    assert child.stdout is not None
    if before:
        child.stdin.write(before)
        child.stdin.flush()
    uri = child.stdout.readline().strip()
    secret = ""
    if uri.startswith("otpauth://"):
        secret = pyotp.parse_uri(uri).secret
        code = pyotp.TOTP(secret).now()
        if not right:
            code = f"{(int(code) + 500_000) % 1_000_000:06d}"
        child.stdin.write(code + "\n")
    child.stdin.close()
    child.stdout.read()
    assert child.stderr is not None
    stderr = child.stderr.read()
    return child.wait(timeout=60), secret, stderr


def next_code(secret: str) -> str:
    """The code after the current one: the current one was just used to enrol, and a
    code works once; the ±1 step window accepts the next one already."""
    return pyotp.TOTP(secret).at(time.time() + 30)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_setup_prints_the_uri_first_and_saves_after_a_right_code(home: Path) -> None:
    code, secret, stderr = enrol(home, "setup")
    assert code == 0, stderr
    totp_file = home / "data" / "totp.key"
    assert load_secret(totp_file) == secret
    assert stat.S_IMODE(totp_file.stat().st_mode) == 0o600
    events = [r["event"] for r in query(home / "data" / "audit")]
    assert events == ["totp_enrolled"]


def test_setup_with_a_wrong_code_saves_nothing(home: Path) -> None:
    code, _, stderr = enrol(home, "setup", right=False)
    assert code == InvalidCode.exit_code
    assert "wrong code" in stderr
    assert not (home / "data" / "totp.key").exists()


def test_re_enrolling_needs_a_code_of_the_current_secret(home: Path) -> None:
    assert enrol(home, "setup")[0] == 0
    old = load_secret(home / "data" / "totp.key")
    code, _, stderr = enrol(home, "setup", before="000000\n")
    assert code == InvalidCode.exit_code
    assert "wrong code" in stderr
    assert load_secret(home / "data" / "totp.key") == old


def test_reset_replaces_the_secret_and_re_keys_the_vault(home: Path) -> None:
    assert enrol(home, "setup")[0] == 0
    old = load_secret(home / "data" / "totp.key")
    vault_file = home / "data" / "secrets.enc"
    Vault(vault_file, TotpKey(old)).set("gmail", {"password": "hunter2"})
    code, new, stderr = enrol(home, "reset", before=next_code(old) + "\n")
    assert code == 0, stderr
    assert new != old
    assert load_secret(home / "data" / "totp.key") == new
    assert Vault(vault_file, TotpKey(new)).get("gmail") == {"password": "hunter2"}
    assert not Vault(vault_file, TotpKey(old)).opens_with(TotpKey(old))
    events = [r for r in query(home / "data" / "audit") if r["event"] == "totp_enrolled"]
    assert [e["replaced"] for e in events] == [False, True]


def test_a_refused_reset_changes_nothing_and_is_audited(home: Path) -> None:
    assert enrol(home, "setup")[0] == 0
    old = load_secret(home / "data" / "totp.key")
    result = run(home, "totp", "reset", stdin="000000\n")
    assert result.returncode == InvalidCode.exit_code
    assert result.stdout == ""
    assert load_secret(home / "data" / "totp.key") == old
    failed = [r for r in query(home / "data" / "audit") if r["event"] == "approval_failed"]
    assert failed[0]["purpose"] == "totp_reset"


def test_reset_before_setup_says_what_to_do(home: Path) -> None:
    result = run(home, "totp", "reset")
    assert result.returncode == NotEnrolled.exit_code
    assert "airlock totp setup" in result.stderr


def test_audit_verify_on_a_fresh_home_is_ok(home: Path) -> None:
    result = run(home, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "ok: 0 records" in result.stdout


def test_audit_verify_reports_an_intact_chain(home: Path) -> None:
    assert enrol(home, "setup")[0] == 0
    result = run(home, "audit", "verify", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["records"] == 1


def test_audit_verify_names_the_tampered_line_and_fails(home: Path) -> None:
    assert enrol(home, "setup")[0] == 0
    assert (
        enrol(home, "reset", before=next_code(load_secret(home / "data" / "totp.key")) + "\n")[0]
        == 0
    )
    log = home / "data" / "audit" / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"replaced":true', b'"replaced":false')
    log.write_bytes(b"".join(lines))
    result = run(home, "audit", "verify")
    assert result.returncode == 1
    assert f"TAMPERED: {log}:2: mac mismatch" in result.stdout
    report = json.loads(run(home, "audit", "verify", "--json").stdout)
    assert report["problem"] == {
        "file": str(log),
        "line": 2,
        "reason": "mac mismatch: the record was changed",
    }


def test_audit_listing_without_a_daemon_says_it_is_unreachable(home: Path) -> None:
    result = run(home, "audit", "today")
    assert result.returncode == DaemonUnreachable.exit_code
