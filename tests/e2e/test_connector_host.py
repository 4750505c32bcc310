"""Connectors run in a connector host process, apart from the approval core.

A real daemon (``tests.e2e.host_trial``: ``airlock serve`` plus a connector that
misbehaves on request) on a real socket; its connector host is a real child process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.daemon_harness import Airlock, leaked_secrets, needs_landlock, remember

from airlock.connector_host.keys import HostKeys
from airlock.security.vault import TotpKey, Vault

TRIAL = {"services": {"trial": {"connector": "trial"}}, "connector_host": {"timeout": "2s"}}


def _trial(home: Path) -> Airlock:
    airlock = Airlock(home, overrides=TRIAL)
    airlock.daemon.command = [sys.executable, "-m", "tests.e2e.host_trial"]
    return airlock


@pytest.fixture
def trial(tmp_path: Path) -> Iterator[Airlock]:
    airlock = _trial(tmp_path / "trial").start()
    try:
        yield airlock
    finally:
        airlock.stop()


def _token(airlock: Airlock, client: httpx.Client, ttl: str = "30m") -> str:
    return str(airlock.session(client, services=["trial"], ttl=ttl)["token"])


def _op(client: httpx.Client, token: str, operation: str, **params: Any) -> httpx.Response:
    return client.post(
        f"/v1/ops/trial/{operation}",
        json={"params": params},
        headers={"Authorization": f"Bearer {token}"},
    )


def _audit(airlock: Airlock) -> list[dict[str, Any]]:
    text = (airlock.paths.audit_dir / "audit.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def test_a_connector_taken_over_reads_none_of_the_core_s_files(trial: Airlock) -> None:
    """A parser bug that takes the host over runs as the person here, so by permissions it
    could read the TOTP secret (and approve anything), the audit key (and forge the log)
    and the state, or rewrite the config: the host hides them from itself at start."""
    needs_landlock()
    outside = trial.home.parent / "outside.txt"
    outside.write_text("the person's own file")
    core = [
        trial.paths.totp_file,
        trial.paths.audit_key_file,
        trial.paths.state_db,
        trial.paths.config_file,
        trial.paths.audit_dir / "audit.jsonl",
    ]
    assert all(path.is_file() for path in core)
    with trial.client() as agent:
        secret = remember("trial-token-" + os.urandom(8).hex())
        stored = agent.post(
            "/v1/credentials/trial", json={"totp": trial.phone.code(), "fields": {"token": secret}}
        )
        assert stored.status_code == 200, stored.text
        token = _token(trial, agent)
        whoami = _op(agent, token, "whoami")
        assert whoami.json()["result"]["text"] == "token set", "its own vault still opens"

        def peek(path: Path) -> str:
            answer = _op(agent, token, "peek", path=str(path))
            assert answer.status_code == 200, answer.text
            return str(answer.json()["result"]["text"])

        assert peek(outside) == "the person's own file"
        for path in core:
            assert peek(path) == "refused: Permission denied", path
    assert "host_unconfined" not in trial.daemon.log.read_text()


def test_operations_run_in_a_child_process_of_the_daemon(trial: Airlock) -> None:
    with trial.client() as agent:
        token = _token(trial, agent)
        answer = _op(agent, token, "whoami")
        assert answer.status_code == 200, answer.text
        host_pid = answer.json()["result"]["pid"]
    daemon_pid = trial.proc.pid if trial.proc else -1
    assert host_pid != daemon_pid, "the connector ran inside the daemon"
    assert _parent(host_pid) == daemon_pid
    cmdline = Path(f"/proc/{host_pid}/cmdline").read_bytes().split(b"\0")
    assert b"airlock.connector_host" in cmdline
    trial.stop()
    assert not Path(f"/proc/{host_pid}").exists(), "the host outlived its daemon"


def test_service_credentials_live_only_in_the_hosts_vault(trial: Airlock) -> None:
    secret = remember("trial-token-" + os.urandom(8).hex())
    with trial.client() as person:
        stored = person.post(
            "/v1/credentials/trial", json={"totp": trial.phone.code(), "fields": {"token": secret}}
        )
        assert stored.status_code == 200, stored.text
        token = _token(trial, person)
        assert _op(person, token, "whoami").json()["result"]["text"] == "token set"
    core_vault = trial.paths.vault_file
    if core_vault.exists():
        assert not Vault(core_vault, TotpKey(trial.phone.secret)).has("trial")
    keys = HostKeys(trial.paths.connectors_dir)
    key_file = trial.paths.connectors_dir / "vault.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert Vault(keys.vault_file, keys.load()).get("trial") == {"token": secret}
    assert not Vault(keys.vault_file, TotpKey(trial.phone.secret)).opens_with(
        TotpKey(trial.phone.secret)
    ), "the host's vault must not open with the TOTP secret"
    assert leaked_secrets(trial.home) == []


def test_credentials_an_older_release_kept_in_the_core_move_to_the_host(tmp_path: Path) -> None:
    airlock = _trial(tmp_path / "old")
    secret = remember("old-token-" + os.urandom(8).hex())
    Vault(airlock.paths.vault_file, TotpKey(airlock.phone.secret)).set("trial", {"token": secret})
    airlock.start()
    try:
        with airlock.client() as agent:
            token = _token(airlock, agent)
            assert _op(agent, token, "whoami").json()["result"]["text"] == "token set"
        assert not Vault(airlock.paths.vault_file, TotpKey(airlock.phone.secret)).has("trial")
        keys = HostKeys(airlock.paths.connectors_dir)
        assert Vault(keys.vault_file, keys.load()).get("trial") == {"token": secret}
        moved = [r for r in _audit(airlock) if r["event"] == "credentials_moved"]
        assert moved
        assert moved[0]["services"] == ["trial"]
    finally:
        airlock.stop()


def test_killing_the_host_mid_operation_is_a_clean_error_and_a_new_host(trial: Airlock) -> None:
    with trial.client() as agent:
        token = _token(trial, agent)
        first = _op(agent, token, "whoami").json()["result"]["pid"]
        answers: list[httpx.Response] = []
        begun = trial.paths.connectors_dir / "napping"  # the one folder the host may write
        napping = threading.Thread(
            target=lambda: answers.append(_op(agent, token, "nap", seconds=5, mark=str(begun)))
        )
        napping.start()
        deadline = time.monotonic() + 30
        while not begun.exists():  # until the nap is running in the host
            assert time.monotonic() < deadline, "the nap never began"
            time.sleep(0.01)
        os.kill(first, signal.SIGKILL)
        napping.join(30)
        assert answers, "the call never answered"
        assert answers[0].status_code == 502, answers[0].text
        error = answers[0].json()["error"]
        assert error["code"] == "service_answer_lost"
        assert "connector host stopped" in error["message"]
        after = _op(agent, token, "whoami")
        assert after.status_code == 200, after.text
        assert after.json()["result"]["pid"] != first
        assert agent.get("/v1/status").status_code == 200
    records = _audit(trial)
    assert any(r["event"] == "connector_host_stopped" for r in records)
    failed = [r for r in records if r["event"] == "operation" and r.get("op") == "nap"]
    assert failed
    assert failed[-1]["outcome"] == "error"


def test_a_hung_operation_times_out_and_the_host_keeps_serving(trial: Airlock) -> None:
    with trial.client() as agent:
        token = _token(trial, agent)
        first = _op(agent, token, "whoami").json()["result"]["pid"]
        started = time.monotonic()
        hung = _op(agent, token, "nap", seconds=60)
        assert hung.status_code == 504, hung.text
        assert hung.json()["error"]["code"] == "service_timeout"
        assert time.monotonic() - started < 30
        again = _op(agent, token, "whoami")
        assert again.json()["result"]["pid"] == first, "an awaiting call needs no restart"


def test_a_host_stuck_in_blocking_code_is_replaced(trial: Airlock) -> None:
    with trial.client() as agent:
        token = _token(trial, agent)
        first = _op(agent, token, "whoami").json()["result"]["pid"]
        stuck = _op(agent, token, "block", seconds=60)
        assert stuck.status_code == 504, stuck.text
        deadline = time.monotonic() + 30
        while True:
            again = _op(agent, token, "whoami")
            if again.status_code == 200 and again.json()["result"]["pid"] != first:
                break
            assert time.monotonic() < deadline, again.text
            time.sleep(0.5)
    assert not Path(f"/proc/{first}").exists() or b"Z" in Path(f"/proc/{first}/stat").read_bytes()


def test_a_crashing_connector_and_a_result_that_fails_its_model_are_contained(
    trial: Airlock,
) -> None:
    with trial.client() as agent:
        token = _token(trial, agent)
        crashed = _op(agent, token, "crash")
        assert crashed.status_code == 502
        assert "RuntimeError" in crashed.json()["error"]["message"]
        assert "hunter2" not in crashed.text, "an exception's message may quote a secret"
        bad = _op(agent, token, "bad_result")
        assert bad.status_code == 502
        assert "did not match its model" in bad.json()["error"]["message"]
        assert _op(agent, token, "whoami").status_code == 200
    assert "hunter2" not in (trial.home / "daemon.log").read_text()


def test_a_result_with_half_a_unicode_pair_reaches_the_agent_with_it_replaced(
    trial: Airlock,
) -> None:
    """A service's JSON can escape half of a UTF-16 pair on its own; decoded, no UTF-8
    encoder takes it, and the host's frame (then the core's answer) failed on it."""
    with trial.client() as agent:
        token = _token(trial, agent)
        answer = _op(agent, token, "odd_text")
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["text"] == "lone \ufffd half, whole \U0001f600"
        assert _op(agent, token, "whoami").status_code == 200  # the host keeps serving


def test_an_endless_wait_a_host_asks_for_is_a_clean_429(trial: Airlock) -> None:
    """A connector (or a compromised host) says the service wants the agent to wait
    ``Infinity`` seconds: the agent gets the 429 as JSON, with no Retry-After the daemon
    cannot write (it crashed turning infinity into a header: a 500 and a traceback)."""
    with trial.client() as agent:
        token = _token(trial, agent)
        limited = _op(agent, token, "slow_down")
        assert limited.status_code == 429, limited.text
        assert limited.json()["error"]["code"] == "service_rate_limited"
        assert "Retry-After" not in limited.headers
        assert _op(agent, token, "whoami").status_code == 200
    assert "Traceback" not in (trial.home / "daemon.log").read_text()
