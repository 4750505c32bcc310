"""A hostile agent against the daemon's state: approvals, sessions, revocation, the audit.

Each test runs a real daemon process on a real socket. Where time matters the daemon runs
on a clock the test moves (``clocked_serve.py``), so a deadline is crossed without
sleeping and before the periodic sweep could tidy it up. Where users matter a second
real Linux user talks to the socket (root only; skipped locally, failing under CI).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import (
    Airlock,
    advance,
    as_uid,
    clock_offset,
    exchange,
    fill_disk,
    fill_right_after_rotation,
    leaked_secrets,
    remember,
    small_audit_disk,
)
from dashboard_support import Browser, dashboard_url


def audit(airlock: Airlock, event: str | None = None) -> list[dict[str, Any]]:
    lines = (airlock.paths.audit_dir / "audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [r for r in records if event is None or r["event"] == event]


def collect(client: httpx.Client, created: dict[str, Any]) -> httpx.Response:
    return client.get(
        f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
    )


# -- expiry is decided by the clock, not by the sweep ------------------------------------


def test_an_expired_request_is_refused_at_approve_and_collect_time(
    start_clocked: Callable[..., Airlock],
) -> None:
    airlock = start_clocked({"approvals": {"timeout": "5m"}})
    with airlock.client() as agent:
        created = airlock.request(agent)
        advance(airlock, 301)
        refused = airlock.approve(agent, created["code"])
        assert refused.status_code == 409, refused.text
        assert "expired" in refused.json()["error"]["message"]
        state = collect(agent, created).json()
    assert state == {"id": created["id"], "status": "expired", "session": None}
    timed_out = [r["request"] for r in audit(airlock, "access_denied")]
    assert timed_out == [created["id"]], "the expiry is audited once"
    assert not audit(airlock, "totp_verified"), "the code was not even checked"


def test_an_approval_not_collected_within_the_timeout_expires(
    start_clocked: Callable[..., Airlock],
) -> None:
    airlock = start_clocked({"approvals": {"timeout": "5m"}})
    with airlock.client() as agent:
        created = airlock.request(agent)
        assert airlock.approve(agent, created["code"]).status_code == 200
        listed = agent.get("/v1/requests").json()
        assert listed["requests"] == []
        assert [(r["id"], r["status"]) for r in listed["uncollected"]] == [
            (created["id"], "approved")
        ]
        advance(airlock, 301)
        state = collect(agent, created).json()
        assert state == {"id": created["id"], "status": "expired", "session": None}
        assert agent.get("/v1/requests").json() == {"requests": [], "uncollected": []}
    expired = audit(airlock, "approval_expired")
    assert [(r["request"], r["reason"]) for r in expired] == [
        (created["id"], "approved but not collected in time")
    ]


def test_a_session_lasts_its_ttl_from_the_approval_not_from_the_collection(
    start_clocked: Callable[..., Airlock],
) -> None:
    airlock = start_clocked({"approvals": {"timeout": "5m"}})
    with airlock.client() as agent:
        created = airlock.request(agent, ttl="10m")
        assert airlock.approve(agent, created["code"]).status_code == 200
        approved_at = time.time() + clock_offset(airlock.home)
        advance(airlock, 240)
        session = collect(agent, created).json()["session"]
        remember(session["token"])
        expires = httpx.Response(200, json=session).json()["expires_at"]
    from datetime import datetime

    left_from_approval = datetime.fromisoformat(expires).timestamp() - approved_at
    assert 590 <= left_from_approval <= 610, left_from_approval


# -- revoke everything really revokes everything -----------------------------------------


def test_revoke_all_cancels_approved_requests_not_yet_collected(airlock: Airlock) -> None:
    with airlock.client() as agent:
        created = airlock.request(agent)
        assert airlock.approve(agent, created["code"]).status_code == 200
        sessions = airlock.cli("sessions")
        assert f"not collected yet: {created['code']}" in sessions.stdout, sessions.stderr
        pending = airlock.cli("pending", "--json")
        assert [(r["code"], r["status"]) for r in json.loads(pending.stdout)] == [
            (created["code"], "approved")
        ]
        listed = agent.get("/v1/sessions").json()
        assert [r["id"] for r in listed["uncollected"]] == [created["id"]]

        revoked = airlock.cli("revoke", "--all")
        assert revoked.returncode == 0, revoked.stderr
        assert "1 approved request" in revoked.stdout

        state = collect(agent, created).json()
        assert state == {"id": created["id"], "status": "revoked", "session": None}
        assert agent.get("/v1/requests").json() == {"requests": [], "uncollected": []}
    cancelled = audit(airlock, "approval_revoked")
    assert [r["request"] for r in cancelled] == [created["id"]]
    assert not audit(airlock, "session_issued")


# -- a write approval runs exactly the approved call, once --------------------------------


def _first_message_id(airlock: Airlock, client: httpx.Client) -> str:
    token = airlock.session(client)["token"]
    listed = airlock.op(client, token, "list_messages", limit=5).json()
    message_id: str = listed["result"]["messages"][0]["id"]
    return message_id


def test_a_write_session_runs_exactly_the_approved_call_once_and_reads_nothing(
    airlock: Airlock,
) -> None:
    with airlock.client() as agent:
        message_id = _first_message_id(airlock, agent)
        params = {"id": message_id, "folder": "INBOX"}
        created = airlock.request(
            agent,
            reason="mark it read",
            operation={"service": "mail", "name": "mark_read", "params": params},
            sensitive=True,
        )
        assert airlock.approve(agent, created["code"]).status_code == 200
        session = collect(agent, created).json()["session"]
        token = remember(session["token"])

        for operation, other in (
            ("list_messages", {"limit": 5}),
            ("get_message", params),
            ("search", {"query": "subject:sign-in"}),
            ("mark_unread", params),
        ):
            refused = airlock.op(agent, token, operation, **other)
            assert refused.status_code == 403, (operation, refused.text)
            assert refused.json()["error"]["code"] == "approval_required"

        assert airlock.op(agent, token, "mark_read", **params).status_code == 200
        again = airlock.op(agent, token, "mark_read", **params)
        assert again.json()["error"]["code"] == "approval_required"
        after = airlock.op(agent, token, "get_message", **params)
        assert after.json()["error"]["code"] == "approval_required"
    issued = [r for r in audit(airlock, "session_issued") if r["request"] == created["id"]]
    assert issued[0]["operation"]["name"] == "mark_read"


def test_a_sensitive_write_request_prompts_no_unmasking_and_unmasks_nothing(
    airlock: Airlock,
) -> None:
    with airlock.client() as agent:
        message_id = _first_message_id(airlock, agent)
        params = {"id": message_id, "folder": "INBOX"}
        created = airlock.request(
            agent,
            reason="mark it read",
            operation={"service": "mail", "name": "mark_read", "params": params},
            sensitive=True,
        )
        assert airlock.approve(agent, created["code"]).status_code == 200
        session = collect(agent, created).json()["session"]
        remember(session["token"])
        listed = agent.get("/v1/sessions").json()["sessions"]
    assert [s["sensitive"] for s in listed if s["id"] == session["id"]] == [False]
    log = airlock.daemon.log.read_text()
    prompt = log[log.index(f"airlock approve {created['code']}") - 1500 :]
    assert "NOT masked" not in prompt


# -- every code check is audited the same way ---------------------------------------------


def test_wrong_codes_on_credential_endpoints_are_audited_and_the_lock_announced(
    airlock_factory: Callable[..., Airlock],
) -> None:
    airlock = airlock_factory({"approvals": {"max_failures": 2}})
    with airlock.client() as person:
        read = person.get("/v1/credentials/mail/password", headers={"X-Airlock-TOTP": "000000"})
        assert read.status_code == 403
        removed = person.request(
            "DELETE", "/v1/credentials/mail", headers={"X-Airlock-TOTP": "000001"}
        )
        assert removed.status_code == 403
        locked = person.post(
            "/v1/credentials/mail", json={"totp": airlock.phone.code(), "fields": {"a": "b"}}
        )
        assert locked.status_code == 423
    failed = audit(airlock, "approval_failed")
    assert [(r["purpose"], r["service"], r["channel"]) for r in failed] == [
        ("read_credential", "mail", "terminal"),
        ("remove_credentials", "mail", "terminal"),
        ("set_credentials", "mail", "terminal"),
    ]
    assert failed[0]["field"] == "password"
    assert [r["attempts_left"] for r in failed] == [1, 0, 0]
    assert len(audit(airlock, "approvals_locked")) == 1
    assert "Approvals are locked until" in airlock.daemon.log.read_text()


def test_each_accepted_code_records_the_request_or_credential_action_it_served(
    airlock: Airlock,
) -> None:
    with airlock.client() as person:
        created = airlock.request(person)
        assert airlock.approve(person, created["code"]).status_code == 200
        read = person.get(
            "/v1/credentials/mail/password", headers={"X-Airlock-TOTP": airlock.phone.code()}
        )
        assert read.status_code == 404, read.text
    verified = audit(airlock, "totp_verified")
    assert verified[0]["purpose"] == "approve"
    assert verified[0]["request"] == created["id"]
    assert verified[0]["request_code"] == created["code"]
    assert (verified[-1]["purpose"], verified[-1]["service"], verified[-1]["field"]) == (
        "read_credential",
        "mail",
        "password",
    )


def test_resending_the_last_accepted_code_is_refused_without_costing_an_attempt(
    airlock_factory: Callable[..., Airlock],
) -> None:
    airlock = airlock_factory({"approvals": {"max_failures": 1}})
    with airlock.client() as person:
        first = airlock.request(person)
        assert airlock.approve(person, first["code"]).status_code == 200
        second = airlock.request(person)
        again = person.post(
            f"/v1/requests/{second['code']}/approve", json={"totp": airlock.phone.used_code()}
        )
        assert again.status_code == 403
        assert again.json()["error"]["message"] == (
            "that code was already used: wait for the next code"
        )
        assert person.get("/v1/status").json()["locked"] is False
        assert airlock.approve(person, second["code"]).status_code == 200
    refused = audit(airlock, "approval_failed")
    assert [(r["counted"], r["request"]) for r in refused] == [(False, second["id"])]


@pytest.fixture
def airlock_factory(start_airlock: Callable[..., Airlock]) -> Callable[..., Airlock]:
    return start_airlock


# -- a state change happens only once its audit record is on disk ------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[tuple[Airlock, Callable[[], None], Callable[[], None]]]:
    """A daemon whose audit directory is a small tmpfs the test can fill and empty."""
    # Small files, so the test can start a fresh audit.jsonl right before filling the
    # disk: a file's last page may still have room, a new file needs a new page.
    airlock = Airlock(
        tmp_path / "home",
        overrides={"audit": {"rotate_bytes": 4096}, "dashboard": {"listen": "127.0.0.1:0"}},
    )
    with small_audit_disk(airlock) as audit_dir:
        filler = audit_dir / "filler"

        def fill() -> None:
            assert fill_disk(audit_dir) == filler

        def empty() -> None:
            filler.unlink(missing_ok=True)

        try:
            airlock.start()
            yield airlock, fill, empty
        finally:
            airlock.stop()
            empty()
            leaks = leaked_secrets(airlock.home)
    assert not leaks, leaks


def test_with_the_audit_disk_full_nothing_changes_and_the_answer_says_so(
    full_disk: tuple[Airlock, Callable[[], None], Callable[[], None]],
) -> None:
    airlock, fill, empty = full_disk
    with airlock.client() as agent:
        # Distinct TTLs: an identical ask would join the pending request.
        to_approve = airlock.request(agent, ttl="61m")
        to_deny = airlock.request(agent, ttl="62m")
        to_collect = airlock.request(agent, ttl="63m")
        assert airlock.approve(agent, to_collect["code"]).status_code == 200
        live = airlock.session(agent, ttl="64m")
        fill_right_after_rotation(airlock, agent, live["token"], fill, empty)

        approved = airlock.approve(agent, to_approve["code"])
        assert approved.status_code == 503, approved.text
        assert "audit record not written" in approved.json()["error"]["message"]
        denied = agent.post(f"/v1/requests/{to_deny['code']}/deny")
        assert denied.status_code == 503
        collected = collect(agent, to_collect)
        assert collected.status_code == 503
        revoked = agent.delete("/v1/sessions")
        assert revoked.status_code == 503

        empty()
        listed = agent.get("/v1/requests").json()
        waiting = {r["id"]: r["status"] for r in listed["requests"] + listed["uncollected"]}
        assert waiting == {
            to_approve["id"]: "pending",
            to_deny["id"]: "pending",
            to_collect["id"]: "approved",
        }
        sessions = agent.get("/v1/sessions").json()["sessions"]
        assert [s["id"] for s in sessions] == [live["id"]]
        assert airlock.op(agent, live["token"], "count_unread").status_code == 200
        session = collect(agent, to_collect).json()["session"]
        assert session is not None
        remember(session["token"])
    verify = airlock.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr
    issued = {r["request"] for r in audit(airlock, "session_issued")}
    assert to_collect["id"] in issued


def test_with_the_audit_disk_full_an_approved_write_is_not_sent_and_stays_approved(
    full_disk: tuple[Airlock, Callable[[], None], Callable[[], None]],
) -> None:
    """The write's record goes on disk before the write goes out: a write the log cannot
    record does not reach the mailbox, and its approval is still there for a retry."""
    airlock, fill, empty = full_disk
    with airlock.client() as agent:
        reader = airlock.session(agent)["token"]
        listed = airlock.op(agent, reader, "list_messages", limit=5, unread_only=True).json()
        params = {"id": listed["result"]["messages"][0]["id"], "folder": "INBOX"}
        unread = airlock.op(agent, reader, "count_unread").json()["result"]
        operation = {"service": "mail", "name": "mark_read", "params": params}
        created = airlock.request(agent, reason="mark it read", operation=operation)
        assert airlock.approve(agent, created["code"]).status_code == 200
        writer = remember(collect(agent, created).json()["session"]["token"])
        fill_right_after_rotation(airlock, agent, reader, fill, empty)

        refused = airlock.op(agent, writer, "mark_read", **params)
        assert refused.status_code == 503, refused.text
        assert "audit record not written" in refused.json()["error"]["message"]

        empty()
        assert airlock.op(agent, reader, "count_unread").json()["result"] == unread
        assert airlock.op(agent, writer, "mark_read", **params).status_code == 200
        after = airlock.op(agent, reader, "count_unread").json()["result"]
        assert after != unread
    records = [
        json.loads(line)
        for path in airlock.paths.audit_dir.glob("audit*.jsonl")
        for line in path.read_text().splitlines()
    ]
    started = [r for r in records if r["event"] == "operation_started"]
    assert [r["approval"] for r in started if r.get("op") == "mark_read"] == [created["id"]]


def test_with_the_audit_disk_full_the_dashboard_ends_no_session_and_says_why(
    full_disk: tuple[Airlock, Callable[[], None], Callable[[], None]],
) -> None:
    """Logging out and revoking on the dashboard, like the API: no record, no change, and
    a clear 503 (not a 500)."""
    airlock, fill, empty = full_disk
    person = Browser(dashboard_url(airlock))
    assert person.login(airlock.phone.code()).status_code == 303
    remember(person.http.cookies["airlock_dashboard"])
    with airlock.client() as agent:
        live = airlock.session(agent)
        csrf = person.csrf("/sessions")
        fill_right_after_rotation(airlock, agent, live["token"], fill, empty)

        revoked = person.post(f"/sessions/{live['id']}/revoke", {"csrf": csrf})
        assert revoked.status_code == 503, revoked.text
        assert "audit record not written" in revoked.text
        logout = person.post("/logout", {"csrf": csrf})
        assert logout.status_code == 503, logout.text
        assert "audit record not written" in logout.text

        empty()
        assert person.get("/pending").status_code == 200  # still logged in
        assert airlock.op(agent, live["token"], "count_unread").status_code == 200
    assert person.post("/logout", {"csrf": csrf}).status_code == 303
    assert person.get("/pending").status_code == 303
    ended = [r for r in audit(airlock, "session_revoked") if r.get("channel") == "dashboard"]
    assert len(ended) == 1
    person.close()


# -- other users on the same daemon -------------------------------------------------------


def http_as(
    uid: int,
    socket_path: Path,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 call from a forked child that has become *uid*."""
    payload = b"" if body is None else json.dumps(body).encode()
    head = [f"{method} {path} HTTP/1.1", "Host: airlock", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    answer = as_uid(uid, lambda: exchange(socket_path, request))
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/"), answer
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def _request_as(
    uid: int, airlock: Airlock, reason: str = "their inbox", ttl: str = "60m"
) -> dict[str, Any]:
    status, created = http_as(
        uid,
        airlock.paths.socket,
        "POST",
        "/v1/requests",
        body={"services": ["mail"], "reason": reason, "ttl": ttl},
    )
    assert status == 202, created
    remember(created["claim"])
    return created


def _session_as(
    uid: int, airlock: Airlock, owner: httpx.Client, ttl: str = "60m"
) -> dict[str, Any]:
    """A session of *uid*'s: asked for as *uid*, approved by the owner, collected as *uid*."""
    created = _request_as(uid, airlock, ttl=ttl)
    approved = airlock.approve(owner, created["code"])
    assert approved.status_code == 200, approved.text
    status, state = http_as(
        uid,
        airlock.paths.socket,
        "GET",
        f"/v1/requests/{created['id']}",
        headers={"X-Airlock-Claim": created["claim"]},
    )
    assert (status, state["status"]) == (200, "approved"), state
    session: dict[str, Any] = state["session"]
    remember(session["token"])
    return session


def _count_unread_as(uid: int, airlock: Airlock, token: str) -> tuple[int, dict[str, Any]]:
    return http_as(
        uid,
        airlock.paths.socket,
        "POST",
        "/v1/ops/mail/count_unread",
        headers={"Authorization": f"Bearer {token}"},
        body={"params": {}},
    )


def test_only_the_uid_that_asked_collects_and_a_thief_does_not_use_up_the_handout(
    shared_airlock: Airlock, other_uid: int
) -> None:
    with shared_airlock.client() as agent:
        created = shared_airlock.request(agent)
        assert shared_airlock.approve(agent, created["code"]).status_code == 200
        url = f"/v1/requests/{created['id']}"
        status, body = http_as(
            other_uid,
            shared_airlock.paths.socket,
            "GET",
            url,
            headers={"X-Airlock-Claim": created["claim"]},
        )
        assert status == 403, body
        assert "session" not in body
        state = collect(agent, created).json()
        assert state["status"] == "approved"
        assert state["session"]["token"].startswith("alk_")
        remember(state["session"]["token"])


def test_a_uid_lists_and_denies_only_its_own_requests(
    shared_airlock: Airlock, other_uid: int
) -> None:
    with shared_airlock.client() as owner:
        mine = shared_airlock.request(owner, reason="the owner's own request")
        theirs = _request_as(other_uid, shared_airlock)
        status, listed = http_as(other_uid, shared_airlock.paths.socket, "GET", "/v1/requests")
        assert status == 200
        assert [r["id"] for r in listed["requests"]] == [theirs["id"]]
        status, body = http_as(
            other_uid, shared_airlock.paths.socket, "POST", f"/v1/requests/{mine['code']}/deny"
        )
        assert status == 404, body
        everyone = {r["id"] for r in owner.get("/v1/requests").json()["requests"]}
        assert everyone == {mine["id"], theirs["id"]}
        status, body = http_as(
            other_uid, shared_airlock.paths.socket, "POST", f"/v1/requests/{theirs['code']}/deny"
        )
        assert status == 200, body
        status, body = http_as(
            other_uid,
            shared_airlock.paths.socket,
            "POST",
            f"/v1/requests/{mine['code']}/approve",
            body={"totp": "123456"},
        )
        assert status in (403, 423), body
        assert [r["id"] for r in owner.get("/v1/requests").json()["requests"]] == [mine["id"]]


def test_the_owner_revoking_all_ends_every_uids_sessions_and_approvals(
    shared_airlock: Airlock, other_uid: int
) -> None:
    """The person at the owner's (or root's) terminal presses the panic button: an agent
    running as another uid must lose its session and its approval not collected yet, as
    with /revoke on the phone (before, only the caller's own uid's were revoked)."""
    socket_path = shared_airlock.paths.socket
    with shared_airlock.client() as owner:
        session = _session_as(other_uid, shared_airlock, owner, ttl="61m")
        waiting = _request_as(other_uid, shared_airlock, ttl="62m")
        assert shared_airlock.approve(owner, waiting["code"]).status_code == 200
        answer = owner.delete("/v1/sessions")
        assert answer.status_code == 200, answer.text
        assert answer.json()["revoked"] == [session["id"]]
        assert answer.json()["cancelled"] == [waiting["id"]]
    status, body = _count_unread_as(other_uid, shared_airlock, session["token"])
    assert status == 401, body
    status, state = http_as(
        other_uid,
        socket_path,
        "GET",
        f"/v1/requests/{waiting['id']}",
        headers={"X-Airlock-Claim": waiting["claim"]},
    )
    assert (status, state["status"], state.get("session")) == (200, "revoked", None)


def test_the_owner_revokes_one_session_of_another_uid(
    shared_airlock: Airlock, other_uid: int
) -> None:
    with shared_airlock.client() as owner:
        session = _session_as(other_uid, shared_airlock, owner)
        answer = owner.delete(f"/v1/sessions/{session['id']}")
        assert answer.status_code == 200, answer.text
    status, body = _count_unread_as(other_uid, shared_airlock, session["token"])
    assert status == 401, body
    revoked = audit(shared_airlock, "session_revoked")
    assert [(e["session"], e["owner_uid"]) for e in revoked] == [(session["id"], other_uid)]


def test_another_uid_revoking_all_ends_only_its_own(
    shared_airlock: Airlock, other_uid: int
) -> None:
    with shared_airlock.client() as owner:
        mine = shared_airlock.session(owner)
        status, body = http_as(other_uid, shared_airlock.paths.socket, "DELETE", "/v1/sessions")
        assert (status, body["revoked"], body["cancelled"]) == (200, [], [])
        status, body = http_as(
            other_uid, shared_airlock.paths.socket, "DELETE", f"/v1/sessions/{mine['id']}"
        )
        assert status == 403, body
        assert shared_airlock.op(owner, mine["token"], "count_unread").status_code == 200


def test_one_uid_filling_its_queue_leaves_room_for_the_others(
    shared_airlock: Airlock, other_uid: int
) -> None:
    from airlock.security.approvals import MAX_PENDING

    # Each asks a longer TTL: asking again for exactly the same thing would join the
    # pending request instead of adding one.
    for n in range(MAX_PENDING):
        _request_as(other_uid, shared_airlock, reason=f"flood {n}", ttl=f"{61 + n}m")
    status, body = http_as(
        other_uid,
        shared_airlock.paths.socket,
        "POST",
        "/v1/requests",
        body={"services": ["mail"], "reason": "one more", "ttl": "300m"},
    )
    assert status == 429, body
    with shared_airlock.client() as owner:
        shared_airlock.request(owner, reason="the owner still gets through")


# -- the live cut check trusts only an authentic tail -------------------------------------


def test_a_forged_tail_record_cannot_hide_records_cut_from_the_log(airlock: Airlock) -> None:
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
        for _ in range(3):
            assert airlock.op(agent, token, "count_unread").status_code == 200
        current = airlock.paths.audit_dir / "audit.jsonl"
        lines = current.read_text().splitlines(keepends=True)
        seq = json.loads(lines[-1])["seq"]
        forged = lines[-3].replace(f'"seq":{seq - 2},', f'"seq":{seq + 50},')
        forged = forged[: forged.index(',"mac":"')] + ',"mac":"' + "ab" * 32 + '"}\n'
        current.write_text("".join([*lines[:-3], forged]))
        refused = airlock.op(agent, token, "count_unread")
        assert refused.status_code == 503, refused.text
        assert "does not verify" in refused.json()["error"]["message"]
    assert current.read_text().splitlines()[-1] == forged.strip()


# -- an agent looping on a refusal does not flood the audit log ----------------------------


def test_a_refusal_loop_writes_one_audit_record_not_one_per_attempt(
    airlock_factory: Callable[..., Airlock],
) -> None:
    airlock = airlock_factory({"permissions": {"rate_limit": 1}})
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
        assert airlock.op(agent, token, "count_unread").status_code == 200
        for _ in range(40):
            assert airlock.op(agent, token, "count_unread").status_code == 429
    assert len(audit(airlock, "operation_denied")) == 1


def busy_under_a_small_budget(
    airlock_factory: Callable[..., Airlock], **budget: Any
) -> tuple[Airlock, str]:
    """A daemon whose audit directory may hold 16 KiB (4 KiB files), after an agent made
    120 calls with its session; the daemon and the session's token."""
    config = {"rotate_bytes": 4096, "max_bytes": 16384, **budget}
    airlock = airlock_factory({"audit": config, "permissions": {"rate_limit": 1000}})
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
        for _ in range(120):
            assert airlock.op(agent, token, "count_unread").status_code == 200
    return airlock, token


def records_of(audit_dir: Path, event: str) -> list[dict[str, Any]]:
    """*event*'s records in every file of the directory, oldest first."""
    return [
        json.loads(line)
        for path in sorted(audit_dir.glob("audit*.jsonl"))
        for line in path.read_text().splitlines()
        if f'"{event}"' in line
    ]


def audit_bytes(audit_dir: Path) -> int:
    return sum(p.stat().st_size for p in audit_dir.glob("audit*.jsonl"))


def test_the_audit_directory_keeps_to_its_budget_and_still_verifies(
    start_clocked: Callable[..., Airlock],
) -> None:
    """Records past ``keep_for`` (1 s) go once no session can still need them either:
    past ``sessions.max_ttl`` and ``dashboard.session_ttl`` (8 h each)."""
    airlock, token = busy_under_a_small_budget(start_clocked, keep_for="1s")
    advance(airlock, 8 * 3600 + 1)
    audit_dir = airlock.paths.audit_dir
    deadline = time.monotonic() + 30  # the daemon tidies every few seconds
    with airlock.client() as agent:
        # Files are dropped one at a time, each with its record: wait for the whole tidy-up.
        while time.monotonic() < deadline:
            dropped_any = any(
                '"audit_files_dropped"' in p.read_text() for p in audit_dir.glob("audit*")
            )
            if dropped_any and audit_bytes(audit_dir) <= 16384 + 4096:
                break
            airlock.op(agent, token, "count_unread")
            time.sleep(0.5)
    assert audit_bytes(audit_dir) <= 16384 + 4096, audit_bytes(audit_dir)
    verified = airlock.audit_verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    dropped = records_of(audit_dir, "audit_files_dropped")
    assert dropped
    assert all(not (audit_dir / r["file"]).exists() for r in dropped)


def test_an_agent_making_records_fast_cannot_push_recent_ones_out(
    airlock_factory: Callable[..., Airlock],
) -> None:
    """An agent with a session makes records as fast as it calls: with the default
    ``audit.keep_for`` (7d) the budget deletes none of the recent ones, says why in the
    log, and the directory stays over budget with its first record still there."""
    airlock, _ = busy_under_a_small_budget(airlock_factory)
    audit_dir = airlock.paths.audit_dir
    deadline = time.monotonic() + 30  # the daemon tidies every few seconds
    while not records_of(audit_dir, "audit_drop_refused") and time.monotonic() < deadline:
        time.sleep(0.5)
    (refused,) = records_of(audit_dir, "audit_drop_refused")
    assert refused["why"].endswith("holds records younger than keep_for")
    assert not any('"audit_files_dropped"' in p.read_text() for p in audit_dir.glob("audit*"))
    first = min(audit_dir.glob("audit-*.jsonl")).read_text().splitlines()[0]
    assert json.loads(first)["seq"] == 1
    assert audit_bytes(audit_dir) > 16384
    assert airlock.audit_verify().returncode == 0


def test_the_owner_sees_every_uids_sessions_and_another_uid_only_its_own(
    shared_airlock: Airlock, other_uid: int
) -> None:
    """To revoke one agent's session the person must find it: the owner's (and root's)
    listing shows every uid's sessions with their uid; another uid sees only its own."""
    socket_path = shared_airlock.paths.socket
    with shared_airlock.client() as owner:
        theirs = _session_as(other_uid, shared_airlock, owner, ttl="63m")
        mine = shared_airlock.session(owner, ttl="64m")
        listed = owner.get("/v1/sessions").json()["sessions"]
        assert {(s["id"], s["uid"]) for s in listed} == {
            (mine["id"], os.getuid()),
            (theirs["id"], other_uid),
        }
    shown = shared_airlock.cli("sessions")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[:2] == ["ID", "UID"]
    row = next(line for line in shown.stdout.splitlines() if theirs["id"] in line)
    assert row.split()[:2] == [theirs["id"], str(other_uid)]
    status, body = http_as(other_uid, socket_path, "GET", "/v1/sessions")
    assert status == 200, body
    assert [(s["id"], s["uid"]) for s in body["sessions"]] == [(theirs["id"], other_uid)]
