"""The approval flow end to end: a real daemon process, a real socket, real files."""

from __future__ import annotations

import json

from daemon_harness import Airlock

from airlock.demo.sample_mail import SIGN_IN_CODE


def test_an_agent_asks_the_person_approves_and_the_agent_reads(airlock: Airlock) -> None:
    with airlock.client() as agent:
        created = airlock.request(agent, reason="find the lunch invitation")
        assert len(created["code"]) == 4
        pending = agent.get("/v1/requests").json()["requests"]
        assert [p["id"] for p in pending] == [created["id"]]
        assert "claim" not in json.dumps(pending)

        waiting = agent.get(
            f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
        ).json()
        assert waiting == {"id": created["id"], "status": "pending", "session": None}

        assert airlock.approve(agent, created["code"]).json()["status"] == "approved"
        state = agent.get(
            f"/v1/requests/{created['id']}?wait=5", headers={"X-Airlock-Claim": created["claim"]}
        ).json()
        token = state["session"]["token"]
        assert token.startswith("alk_")
        assert state["session"]["services"] == ["mail"]
        assert state["session"]["access"] == "read"

        listed = airlock.op(agent, token, "list_messages", limit=10)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["untrusted"] is True
        subjects = [m["subject"] for m in body["result"]["messages"]]
        assert "Lunch on Thursday?" in subjects

        again = agent.get(
            f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
        ).json()
        assert again["status"] == "approved"
        assert again["session"] is None, "the token is handed out once"

    assert airlock.audit_verify().returncode == 0
    log = (airlock.paths.audit_dir / "audit.jsonl").read_text()
    for event in ("access_requested", "totp_verified", "session_issued", "operation"):
        assert f'"event":"{event}"' in log
    assert token not in log
    assert created["claim"] not in log


def test_one_time_codes_in_mail_are_masked_for_the_agent(airlock: Airlock) -> None:
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
        found = airlock.op(agent, token, "search", query="subject:sign-in").json()
        message_id = found["result"]["messages"][0]["id"]
        message = airlock.op(agent, token, "get_message", id=message_id).json()["result"]
    assert SIGN_IN_CODE not in message["text"]
    assert "[code redacted]" in message["text"]
    assert "reset-password" not in message["text"]


def test_the_claim_secret_is_needed_to_collect_the_token(airlock: Airlock) -> None:
    with airlock.client() as agent:
        created = airlock.request(agent)
        airlock.approve(agent, created["code"])
        url = f"/v1/requests/{created['id']}"
        assert agent.get(url).status_code == 403
        assert agent.get(url, headers={"X-Airlock-Claim": "clm_guess"}).status_code == 403
        state = agent.get(url, headers={"X-Airlock-Claim": created["claim"]}).json()
        assert state["session"]["token"].startswith("alk_")


def test_a_reused_code_is_refused(airlock: Airlock) -> None:
    with airlock.client() as agent:
        first = airlock.request(agent)
        assert airlock.approve(agent, first["code"]).status_code == 200
        second = airlock.request(agent)
        replay = agent.post(
            f"/v1/requests/{second['code']}/approve", json={"totp": airlock.phone.used_code()}
        )
        assert replay.status_code == 403
        assert replay.json()["error"]["code"] == "invalid_code"
        assert agent.get("/v1/requests").json()["requests"][0]["id"] == second["id"]


def test_a_denied_request_gives_no_session(airlock: Airlock) -> None:
    with airlock.client() as agent:
        created = airlock.request(agent)
        assert agent.post(f"/v1/requests/{created['code']}/deny").json()["status"] == "denied"
        state = agent.get(
            f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
        ).json()
        assert state == {"id": created["id"], "status": "denied", "session": None}
        late = airlock.approve(agent, created["code"])
        assert late.status_code == 409


def test_a_write_needs_its_own_approval_and_works_once(airlock: Airlock) -> None:
    with airlock.client() as agent:
        read_token = airlock.session(agent)["token"]
        messages = airlock.op(agent, read_token, "list_messages", unread_only=True).json()
        target = messages["result"]["messages"][0]["id"]

        refused = airlock.op(agent, read_token, "mark_read", id=target)
        assert refused.status_code == 403

        operation = {"service": "mail", "name": "mark_read", "params": {"id": target}}
        write = airlock.session(agent, operation=operation, reason="tidy up")
        assert write["access"] == "write"
        other = airlock.op(agent, write["token"], "mark_unread", id=target)
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "approval_required"
        done = airlock.op(agent, write["token"], "mark_read", id=target)
        assert done.status_code == 200, done.text
        twice = airlock.op(agent, write["token"], "mark_read", id=target)
        assert twice.status_code == 403
        assert twice.json()["error"]["code"] == "approval_required"

        after = airlock.op(agent, read_token, "get_message", id=target).json()["result"]
        assert after["unread"] is False


def test_revocation_takes_effect_on_the_next_call(airlock: Airlock) -> None:
    with airlock.client() as agent:
        session = airlock.session(agent)
        assert airlock.op(agent, session["token"], "count_unread").status_code == 200
        assert agent.delete(f"/v1/sessions/{session['id']}").json()["revoked"] == [session["id"]]
        after = airlock.op(agent, session["token"], "count_unread")
        assert after.status_code == 401
        assert after.json()["error"]["message"] == "session revoked"


def test_sessions_survive_a_daemon_restart(airlock: Airlock) -> None:
    with airlock.client() as agent:
        session = airlock.session(agent)
        assert airlock.op(agent, session["token"], "count_unread").status_code == 200
    airlock.restart()
    with airlock.client() as agent:
        assert airlock.op(agent, session["token"], "count_unread").status_code == 200
        listed = agent.get("/v1/sessions").json()["sessions"]
        assert [s["id"] for s in listed] == [session["id"]]
        assert listed[0]["use_count"] == 2, "uses before and after the restart both count"


def test_one_daemon_per_data_directory_and_a_clean_stop(airlock: Airlock) -> None:
    from airlock.clients.local_daemon import LocalDaemon
    from airlock.errors import DaemonUnreachable

    second = LocalDaemon(airlock.home, log=airlock.home / "second.log")
    try:
        second.start(timeout=60)  # it exits as soon as it finds the lock: no wait then
        raise AssertionError("a second daemon started on the same data directory")
    except DaemonUnreachable:
        pass
    assert "another airlock daemon is already using" in (airlock.home / "second.log").read_text()
    with airlock.client() as agent:
        assert agent.get("/v1/status").status_code == 200, "the first daemon is unharmed"
    assert airlock.stop() == 0
    assert not airlock.paths.socket.exists()
    last = (airlock.paths.audit_dir / "audit.jsonl").read_text().splitlines()[-1]
    assert '"event":"daemon_stopped"' in last


def test_records_cut_off_the_end_of_the_audit_log_are_detected(airlock: Airlock) -> None:
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
        assert airlock.op(agent, token, "count_unread").status_code == 200
        audit_file = airlock.paths.audit_dir / "audit.jsonl"
        lines = audit_file.read_text().splitlines(keepends=True)
        audit_file.write_text("".join(lines[:-2]))  # hide the last two records

        verified = airlock.audit_verify()
        assert verified.returncode == 1
        assert json.loads(verified.stdout)["problem"]["reason"].startswith("records after seq")

        refused = airlock.op(agent, token, "count_unread")
        assert refused.status_code == 503, "nothing is served on a cut log"
        assert refused.json()["error"]["code"] == "audit_unavailable"


def test_records_cut_while_the_daemon_was_down_are_detected_at_restart(airlock: Airlock) -> None:
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
        assert airlock.op(agent, token, "count_unread").status_code == 200
    airlock.stop()
    audit_file = airlock.paths.audit_dir / "audit.jsonl"
    lines = audit_file.read_text().splitlines(keepends=True)
    audit_file.write_text("".join(lines[:-3]))  # the operation and the stop vanish
    airlock.start()

    verified = airlock.audit_verify()
    assert verified.returncode == 1
    assert "cut off the end" in json.loads(verified.stdout)["problem"]["reason"]
    assert '"event":"audit_cut_detected"' in audit_file.read_text()


def test_the_owner_reads_the_audit_trail_over_the_api(airlock: Airlock) -> None:
    with airlock.client() as person:
        session = airlock.session(person)
        issued = person.get("/v1/audit", params={"event": "session_issued", "since": "1d"}).json()
        assert [e["session"] for e in issued["events"]] == [session["id"]]
        assert session["token"] not in str(issued)
        bad = person.get("/v1/audit", params={"since": "last tuesday"})
        assert bad.status_code == 400
        assert bad.json()["error"]["field"] == "since"


def test_airlock_audit_shows_the_newest_events_when_there_are_more_than_its_limit(
    airlock: Airlock,
) -> None:
    """An agent that writes many records first (asking and withdrawing, reading) must not
    push what it did last out of `airlock audit`: the listing keeps the newest events and
    says that earlier ones are not shown."""
    with airlock.client() as agent:
        for n in range(30):
            asked = airlock.request(agent, reason=f"noise {n}")
            assert agent.post(f"/v1/requests/{asked['code']}/deny").status_code == 200
        airlock.request(agent, reason="the one that matters")
    shown = airlock.cli("audit", "--limit", "20")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 20
    assert "the one that matters" in shown.stdout
    assert "noise 0" not in shown.stdout
    assert "--limit" in shown.stderr, "the listing says it is cut"
    listed = json.loads(airlock.cli("audit", "--limit", "20", "--json").stdout)
    assert "the one that matters" in [r.get("reason") for r in listed]
    assert [r["seq"] for r in listed] == sorted(r["seq"] for r in listed), "oldest first"
    whole = airlock.cli("audit", "--limit", "1000")
    assert "noise 0" in whole.stdout
    assert "--limit" not in whole.stderr
