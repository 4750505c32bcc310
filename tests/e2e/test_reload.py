"""Live reload: `airlock reload` and SIGHUP re-read the config, services and notifiers
while sessions and pending requests survive; a broken config is refused and the running
one stays; `airlock status` says when the file changed since it was read."""

from __future__ import annotations

import json
import signal
import time

import yaml
from daemon_harness import Airlock

from airlock.demo.sample_mail import write_sample_maildir


def _add_archive(airlock: Airlock) -> None:
    config = yaml.safe_load((airlock.home / "config.yaml").read_text())
    archive = write_sample_maildir(airlock.home / "Archive")
    config["services"]["archive"] = {"connector": "maildir", "path": str(archive)}
    (airlock.home / "config.yaml").write_text(yaml.safe_dump(config))


def _status(airlock: Airlock) -> dict[str, object]:
    done = airlock.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    facts: dict[str, object] = json.loads(done.stdout)
    return facts


def test_reload_adds_a_service_and_keeps_sessions_and_pending_requests(airlock: Airlock) -> None:
    with airlock.client() as agent:
        session = airlock.session(agent)
        waiting = airlock.request(agent, reason="still waiting")
        _add_archive(airlock)
        assert "config changed since start: run airlock reload" in _status(airlock)["warnings"]

        done = airlock.cli("reload")
        assert done.returncode == 0, done.stderr
        assert "services archive, mail" in done.stdout

        assert "config changed since start: run airlock reload" not in _status(airlock)["warnings"]
        names = [s["name"] for s in agent.get("/v1/services").json()["services"]]
        assert names == ["archive", "mail"]
        assert airlock.op(agent, session["token"], "count_unread").status_code == 200
        assert airlock.approve(agent, waiting["code"]).status_code == 200
        collected = agent.get(
            f"/v1/requests/{waiting['id']}", headers={"X-Airlock-Claim": waiting["claim"]}
        ).json()
        assert collected["status"] == "approved"
    audit = (airlock.paths.audit_dir / "audit.jsonl").read_text()
    assert '"event":"config_reloaded"' in audit.replace(" ", "")
    assert airlock.audit_verify().returncode == 0


def test_a_broken_config_is_refused_and_the_running_one_stays(airlock: Airlock) -> None:
    config_file = airlock.home / "config.yaml"
    good = config_file.read_text()
    config_file.write_text(good + "sessions: {max_ttl: banana}\n")
    done = airlock.cli("reload")
    assert done.returncode == 1
    assert "sessions.max_ttl" in done.stderr
    with airlock.client() as agent:
        session = airlock.session(agent)
        assert airlock.op(agent, session["token"], "count_unread").status_code == 200
        # (`airlock status` itself reports the broken file; the daemon says it changed.)
        assert agent.get("/v1/status").json()["config_changed"] is True
    assert airlock.proc is not None
    assert airlock.proc.poll() is None


def test_sighup_reloads_too(airlock: Airlock) -> None:
    _add_archive(airlock)
    assert airlock.proc is not None
    airlock.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    with airlock.client() as agent:
        while True:
            names = [s["name"] for s in agent.get("/v1/services").json()["services"]]
            if "archive" in names or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert names == ["archive", "mail"]
