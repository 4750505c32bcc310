"""The passphrase lock: `airlock lock --set-passphrase` seals the TOTP secret and the vault,
the daemon is locked (requests wait, codes are refused with 423) until `airlock unlock`
reads the passphrase from stdin, and it is locked again after every start."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from daemon_harness import Airlock, remember

from airlock.ptrace import SCOPE_FILE
from airlock.security.vault import TotpKey, Vault


def test_a_sealed_airlock_waits_for_unlock_and_its_files_hold_no_secret(
    start_airlock: Callable[..., Airlock],
) -> None:
    airlock = start_airlock()
    password = remember("hunter2-" + secrets.token_hex(8))
    Vault(airlock.paths.vault_file, TotpKey(airlock.phone.secret)).set(
        "probe", {"password": password}
    )
    passphrase = remember("correct horse " + secrets.token_hex(8))

    sealed = airlock.cli("lock", "--set-passphrase", stdin=passphrase + "\n")
    assert sealed.returncode == 0, sealed.stderr
    assert not airlock.paths.totp_file.exists()
    for path in airlock.paths.data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert airlock.phone.secret.encode() not in content, path
            assert password.encode() not in content, path

    with airlock.client() as agent:
        assert agent.get("/v1/status").json()["passphrase_locked"] is True
        waiting = airlock.request(agent)  # an agent's request is taken and waits
        refused = airlock.approve(agent, waiting["code"])
        assert refused.status_code == 423
        assert refused.json()["error"]["code"] == "airlock_locked"
        assert "LOCKED by its passphrase" in airlock.cli("status").stdout

        wrong = airlock.cli("unlock", stdin="not the passphrase\n")
        assert wrong.returncode != 0
        assert "wrong passphrase" in wrong.stderr
        opened = airlock.cli("unlock", stdin=passphrase + "\n")
        assert opened.returncode == 0, opened.stderr

        assert agent.get("/v1/status").json()["passphrase_locked"] is False
        again = airlock.cli("unlock", stdin="")  # nothing to type: it says so, asks nothing
        assert again.returncode == 0, again.stderr
        assert "nothing to unlock" in again.stdout
        assert airlock.approve(agent, waiting["code"]).status_code == 200
        state = agent.get(
            f"/v1/requests/{waiting['id']}", headers={"X-Airlock-Claim": waiting["claim"]}
        ).json()
        assert state["status"] == "approved"
        remember(state["session"]["token"])
    listing = json.loads(airlock.cli("credentials", "list", "--json").stdout)
    assert {"service": "probe", "stored": True} in listing

    events = [
        json.loads(line)["event"]
        for line in (airlock.paths.audit_dir / "audit.jsonl").read_text().splitlines()
    ]
    assert events.index("unlock_failed") < events.index("daemon_unlocked")

    airlock.restart()
    with airlock.client() as agent:
        assert agent.get("/v1/status").json()["passphrase_locked"] is True


def test_status_says_what_ptrace_scope_means(airlock: Airlock) -> None:
    facts = json.loads(airlock.cli("status", "--json").stdout)
    try:
        expected: int | None = int(SCOPE_FILE.read_text())
    except OSError:
        expected = None
    assert facts["ptrace_scope"]["value"] == expected
    assert "memory" in facts["ptrace_scope"]["meaning"]
    if expected in (None, 0):
        warned = [w for w in facts["warnings"] if w.startswith("ptrace_scope")]
        assert "memory of your other processes" in warned[0]
        assert "the daemon and connector host refuse it" in warned[0]
    shown = airlock.cli("status").stdout
    assert shown.count(facts["ptrace_scope"]["meaning"]) == 1, "said once, not twice"
