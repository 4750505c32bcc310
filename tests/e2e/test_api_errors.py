"""Every error status of the API table, each from a real daemon, each as JSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from daemon_harness import Airlock


def error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body: dict[str, str] = response.json()["error"]
    assert body["code"]
    assert body["message"]
    return body


def test_bad_input_is_400_with_the_field(airlock: Airlock) -> None:
    with airlock.client() as agent:
        assert error(agent.post("/v1/requests", content=b"{nope"), 400)["field"] == "body"
        missing = error(agent.post("/v1/requests", json={"services": ["mail"]}), 400)
        assert missing["field"] == "reason"
        ttl = error(
            agent.post("/v1/requests", json={"services": ["mail"], "reason": "x", "ttl": "soon"}),
            400,
        )
        assert ttl["field"] == "ttl"
        token = airlock.session(agent)["token"]
        limit = error(airlock.op(agent, token, "list_messages", limit=100000), 400)
        assert limit["field"] == "params.limit"
        unknown = error(airlock.op(agent, token, "list_messages", colour="red"), 400)
        assert unknown["field"] == "params.colour"


def test_no_or_unknown_token_is_401(airlock: Airlock) -> None:
    with airlock.client() as agent:
        assert error(agent.post("/v1/ops/mail/count_unread", json={}), 401)
        forged = "alk_" + "A" * 43
        assert (
            error(airlock.op(agent, forged, "count_unread"), 401)["message"]
            == "unknown session token"
        )


def test_an_unknown_service_is_404_even_with_a_session(airlock: Airlock) -> None:
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
        response = agent.post(
            "/v1/ops/nothere/count_unread", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        assert error(response, 404)


def test_a_service_outside_the_session_is_403(
    start_airlock: Callable[..., Airlock], tmp_path: Path
) -> None:
    archive = {"connector": "maildir", "path": str(tmp_path / "home" / "Maildir" / ".Archive")}
    airlock = start_airlock({"services": {"archive": archive}})
    with airlock.client() as agent:
        token = airlock.session(agent, services=["mail"])["token"]
        response = agent.post(
            "/v1/ops/archive/count_unread",
            json={"params": {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert "does not cover service 'archive'" in error(response, 403)["message"]


def test_unknown_things_are_404(airlock: Airlock) -> None:
    with airlock.client() as agent:
        assert error(agent.post("/v1/requests", json={"services": ["nope"], "reason": "x"}), 404)
        token = airlock.session(agent)["token"]
        assert error(airlock.op(agent, token, "launch_rockets"), 404)
        assert error(agent.get("/v1/requests/req_nothing", headers={"X-Airlock-Claim": "x"}), 404)
        assert error(agent.post("/v1/requests/ZZZZ/approve", json={"totp": "123456"}), 404)
        assert error(agent.delete("/v1/sessions/ses_nothing"), 404)


def test_a_request_no_longer_pending_is_409(airlock: Airlock) -> None:
    with airlock.client() as agent:
        created = airlock.request(agent)
        assert airlock.approve(agent, created["code"]).status_code == 200
        assert error(airlock.approve(agent, created["code"]), 409)["code"] == "not_pending"


def test_a_body_over_1_mib_is_413(airlock: Airlock) -> None:
    with airlock.client() as agent:
        big = b'{"services": ["mail"], "reason": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        assert error(agent.post("/v1/requests", content=big), 413)


def test_too_many_wrong_codes_lock_approvals_423(start_airlock: Callable[..., Airlock]) -> None:
    airlock = start_airlock({"approvals": {"max_failures": 2}})
    with airlock.client() as agent:
        created = airlock.request(agent)
        for _ in range(2):
            wrong = agent.post(f"/v1/requests/{created['code']}/approve", json={"totp": "000000"})
            assert error(wrong, 403)["code"] == "invalid_code"
        locked = airlock.approve(agent, created["code"])
        assert error(locked, 423)["code"] == "approvals_locked"
        assert agent.get("/v1/status").json()["locked"] is True


def test_too_many_operations_are_429(start_airlock: Callable[..., Airlock]) -> None:
    airlock = start_airlock({"permissions": {"rate_limit": 3}})
    with airlock.client() as agent:
        token = airlock.session(agent)["token"]
        for _ in range(3):
            assert airlock.op(agent, token, "count_unread").status_code == 200
        assert error(airlock.op(agent, token, "count_unread"), 429)["code"] == "rate_limited"


def test_unknown_paths_and_methods_are_json_errors(airlock: Airlock) -> None:
    with airlock.client() as agent:
        assert error(agent.get("/v1/nothing"), 404)["code"] == "not_found"
        assert error(agent.put("/v1/status"), 405)["code"] == "method_not_allowed"
