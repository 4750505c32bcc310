"""``airlock totp reset`` through a running daemon (personal mode, a real daemon process):
a code of the current secret starts it, the daemon answers the new secret's URI, and the
new secret is in force only once a code of it comes back. The isolated-mode twin, with the
person as a real second user, is in test_isolated.py."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pyotp
from daemon_harness import OTHER_USER, Airlock, TotpPhone, advance, remember
from dashboard_support import Browser, start_with_dashboard
from isolated_harness import as_user

from airlock.daemon.reenrol import CONFIRM_TRIES, RESET_TTL
from airlock.passphrase import sealed_file
from airlock.security.totp import load_secret
from airlock.security.vault import TotpKey, Vault


def audit(airlock: Airlock) -> list[dict[str, Any]]:
    lines = (airlock.paths.audit_dir / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def reset_with_cli(airlock: Airlock, current: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """``airlock totp reset`` as a script drives it: the current code on stdin's first line,
    the URI on stdout's first line, then the first code of the new secret. Returns the
    finished process and the new secret."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlock", "totp", "reset"],
        env=airlock.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(current + "\n")
    proc.stdin.flush()
    uri = proc.stdout.readline().strip()
    if not uri.startswith("otpauth://"):
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, uri + out, err), ""
    secret = remember(pyotp.parse_uri(uri).secret)
    phone = TotpPhone(secret, airlock.phone.last_step)
    out, err = proc.communicate(phone.code() + "\n", timeout=60)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, uri + "\n" + out, err)
    if proc.returncode == 0:
        airlock.phone = phone
    return done, secret


def start_reset(airlock: Airlock, client: httpx.Client) -> dict[str, Any]:
    started = client.post("/v1/totp/reset", json={"totp": airlock.phone.code()})
    assert started.status_code == 200, started.text
    body: dict[str, Any] = started.json()
    remember(pyotp.parse_uri(body["uri"]).secret)
    return body


def test_a_reset_through_the_daemon_re_keys_the_vault_and_the_old_app_stops_working(
    airlock: Airlock,
) -> None:
    old = airlock.phone.secret
    password = remember("pw-" + secrets.token_hex(8))
    Vault(airlock.paths.vault_file, TotpKey(old)).set("probe", {"password": password})
    old_phone = TotpPhone(old, airlock.phone.last_step)

    done, new = reset_with_cli(airlock, airlock.phone.code())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TOTP secret replaced" in done.stdout
    assert "the vault is re-keyed to the new secret" in done.stdout
    assert load_secret(airlock.paths.totp_file) == new
    assert Vault(airlock.paths.vault_file, TotpKey(new)).get("probe") == {"password": password}
    assert not Vault(airlock.paths.vault_file).opens_with(TotpKey(old))

    with airlock.client() as agent:
        waiting = airlock.request(agent)
        old_phone.last_step = airlock.phone.last_step
        refused = agent.post(
            f"/v1/requests/{waiting['code']}/approve", json={"totp": old_phone.code()}
        )
        assert refused.status_code == 403, refused.text
        assert airlock.approve(agent, waiting["code"]).status_code == 200
        # The daemon kept serving credentials: it follows the re-keyed vault.
        listing = agent.get("/v1/credentials").json()["credentials"]
        assert {"service": "probe", "stored": True} in listing

    records = audit(airlock)
    events = [r["event"] for r in records]
    verified = [r for r in records if r["event"] == "totp_verified"]
    assert verified[0]["purpose"] == "totp_reset"
    assert events.index("totp_reset_started") < events.index("totp_enrolled")
    enrolled = next(r for r in records if r["event"] == "totp_enrolled")
    assert enrolled["via"] == "daemon"
    assert enrolled["replaced"] is True
    text = (airlock.paths.audit_dir / "audit.jsonl").read_text()
    assert new not in text
    assert old not in text
    assert airlock.audit_verify().returncode == 0


def test_a_mistyped_enrolment_changes_nothing_and_the_reset_is_dropped_after_five(
    airlock: Airlock,
) -> None:
    before = airlock.paths.totp_file.read_bytes()
    with airlock.client() as person:
        started = start_reset(airlock, person)
        new = TotpPhone(pyotp.parse_uri(started["uri"]).secret)
        wrong = f"{(int(new.totp_at(int(new.now() // 30))) + 1) % 1_000_000:06d}"
        for left in range(CONFIRM_TRIES - 1, 0, -1):
            answer = person.post("/v1/totp/confirm", json={"id": started["id"], "totp": wrong})
            assert answer.status_code == 403, answer.text
            assert f"{left} tries left" in answer.json()["error"]["message"]
        last = person.post("/v1/totp/confirm", json={"id": started["id"], "totp": wrong})
        assert last.status_code == 409, last.text
        assert "dropped" in last.json()["error"]["message"]
        # Even the right code is too late now: the reset is gone, the old secret rules.
        gone = person.post("/v1/totp/confirm", json={"id": started["id"], "totp": new.code()})
        assert gone.status_code == 404, gone.text
        assert airlock.paths.totp_file.read_bytes() == before
        waiting = airlock.request(person)
        assert airlock.approve(person, waiting["code"]).status_code == 200
    failed = [r for r in audit(airlock) if r["event"] == "totp_reset_failed"]
    assert [r["tries_left"] for r in failed] == list(range(CONFIRM_TRIES - 1, -1, -1))


def test_no_first_enrolment_through_the_daemon(start_airlock: Callable[..., Airlock]) -> None:
    airlock = start_airlock()
    airlock.paths.totp_file.unlink()
    with airlock.client() as agent:
        answer = agent.post("/v1/totp/reset", json={"totp": "123456"})
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "totp_not_enrolled"
    assert "first enrolment" in error["hint"]
    # The CLI, with a daemon answering and no secret, has nothing to reset.
    refused = airlock.cli("totp", "reset", stdin="123456\n")
    assert refused.returncode != 0
    assert "no TOTP secret to reset" in refused.stderr


def test_only_the_uid_that_started_a_reset_may_confirm_it(shared_airlock: Airlock) -> None:
    airlock = shared_airlock
    with airlock.client() as person:
        started = start_reset(airlock, person)
    new = TotpPhone(pyotp.parse_uri(started["uri"]).secret, airlock.phone.last_step)
    body = {"id": started["id"], "totp": new.code()}

    def confirm() -> int:
        with airlock.client() as other:
            return other.post("/v1/totp/confirm", json=body).status_code

    assert as_user(OTHER_USER, confirm) == 404
    with airlock.client() as person:
        mine = person.post("/v1/totp/confirm", json={"id": started["id"], "totp": new.code()})
    assert mine.status_code == 200, mine.text


def test_an_unconfirmed_reset_expires_by_the_clock(
    start_clocked: Callable[..., Airlock],
) -> None:
    airlock = start_clocked()
    with airlock.client() as person:
        started = start_reset(airlock, person)
        new = TotpPhone(
            pyotp.parse_uri(started["uri"]).secret, airlock.phone.last_step, airlock.phone.now
        )
        advance(airlock, RESET_TTL + 1)
        late = person.post("/v1/totp/confirm", json={"id": started["id"], "totp": new.code()})
        assert late.status_code == 404, late.text
    assert "totp_reset_expired" in [r["event"] for r in audit(airlock)]
    assert load_secret(airlock.paths.totp_file) == airlock.phone.secret


def test_under_the_passphrase_lock_the_new_secret_is_sealed_with_the_same_passphrase(
    airlock: Airlock,
) -> None:
    passphrase = remember("correct horse " + secrets.token_hex(8))
    assert airlock.cli("lock", "--set-passphrase", stdin=passphrase + "\n").returncode == 0

    closed = airlock.cli("totp", "reset", stdin="123456\n")  # refused before a code is read
    assert closed.returncode != 0
    assert "passphrase lock is closed" in closed.stderr
    assert "airlock unlock" in closed.stderr

    assert airlock.cli("unlock", stdin=passphrase + "\n").returncode == 0
    sealed_before = sealed_file(airlock.paths).read_bytes()
    done, new = reset_with_cli(airlock, airlock.phone.code())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sealed with your passphrase" in done.stdout
    assert not airlock.paths.totp_file.exists()
    assert sealed_file(airlock.paths).read_bytes() != sealed_before
    for path in airlock.paths.data_dir.rglob("*"):
        if path.is_file():
            assert new.encode() not in path.read_bytes(), path

    with airlock.client() as agent:
        assert agent.get("/v1/status").json()["passphrase_locked"] is False
        first = airlock.request(agent)
        assert airlock.approve(agent, first["code"]).status_code == 200

    airlock.restart()  # locked again; the same passphrase opens the new secret
    assert airlock.cli("unlock", stdin=passphrase + "\n").returncode == 0
    with airlock.client() as agent:
        second = airlock.request(agent, reason="after a restart")
        assert airlock.approve(agent, second["code"]).status_code == 200


def test_dashboard_logins_made_with_the_old_secret_end_when_it_is_replaced(
    start_airlock: Callable[..., Airlock],
) -> None:
    """A secret is replaced because it may have leaked: a browser logged in with a code
    of it (perhaps someone else's) must not stay logged in. Agents' sessions stay."""
    airlock, url = start_with_dashboard(start_airlock)
    browser = Browser(url)
    try:
        assert browser.login(airlock.phone.code()).status_code == 303
        assert browser.get("/sessions").status_code == 200
        with airlock.client() as agent:
            token = airlock.session(agent)["token"]
            done, _ = reset_with_cli(airlock, airlock.phone.code())
            assert done.returncode == 0, done.stdout + done.stderr
            assert browser.get("/sessions").headers.get("Location", "").startswith("/login")
            assert airlock.op(agent, token, "count_unread").status_code == 200
    finally:
        browser.close()
    ended = [r for r in audit(airlock) if r.get("reason") == "totp_replaced"]
    assert [r["event"] for r in ended] == ["session_revoked"]
    events = [r["event"] for r in audit(airlock)]
    assert events.index("totp_enrolled") < events.index("session_revoked")
    assert airlock.audit_verify().returncode == 0
