"""A reload (or a start) with a lower ``sessions.max_ttl`` or ``max_usd`` holds the sessions
open now to it: a session ends by its start plus the new ``max_ttl`` (at once if that is
past), a spend session's budget is at most the new cap (what was spent stays spent), an
approval not collected yet gets a session within the new limits. Each change is audited
before the state database changes; a daemon killed between the two applies it at its
next start even when the config was raised meanwhile. Raising a limit changes nothing.

Real daemon processes on real sockets; time moves by the clock file the daemon reads
(``clocked_serve.py``), never by sleeping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from daemon_harness import (
    Airlock,
    advance,
    clock_offset,
    clocked,
    killed_after_record,
    leaked_secrets,
)
from llm_harness import budget_of, spend_session, start_llm
from llm_harness import chat as llm_chat
from tests.openrouter.openrouter_server import OpenRouterServer

CHANGES = ("session_shortened", "budget_lowered")


def configure(airlock: Airlock, change: Callable[[dict[str, Any]], None]) -> None:
    path = airlock.home / "config.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))


def max_ttl(value: str) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        config.setdefault("sessions", {})["max_ttl"] = value

    return change


def reload(airlock: Airlock) -> None:
    done = airlock.cli("reload")
    assert done.returncode == 0, done.stderr


def records(airlock: Airlock, *events: str) -> list[dict[str, Any]]:
    lines = [
        json.loads(line)
        for path in sorted(airlock.paths.audit_dir.glob("audit*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    return [r for r in lines if r["event"] in events]


def listed(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in client.get("/v1/sessions").json()["sessions"]}


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def collect(client: httpx.Client, created: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = client.get(
        f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
    ).json()
    return state


def test_a_lower_max_ttl_shortens_the_sessions_open_now(
    start_clocked: Callable[..., Airlock],
) -> None:
    airlock = start_clocked()
    with airlock.client() as agent:
        old = airlock.session(agent, ttl="2h")
        advance(airlock, 45 * 60)
        young = airlock.session(agent, ttl="2h")
        waiting = airlock.request(agent, ttl="2h", reason="approved, not collected yet")
        assert airlock.approve(agent, waiting["code"]).status_code == 200
        before = listed(agent)
        assert ts(before[young["id"]]["expires_at"]) - ts(before[young["id"]]["created_at"]) > 7000

        configure(airlock, max_ttl("30m"))
        reload(airlock)

        after = listed(agent)
        start = ts(after[young["id"]]["created_at"])
        assert ts(after[young["id"]]["expires_at"]) == pytest.approx(start + 1800, abs=1)
        assert old["id"] not in after  # past its start + 30m: ended now
        refused = airlock.op(agent, old["token"], "count_unread")
        assert refused.status_code == 401, refused.text
        assert "expired" in refused.json()["error"]["message"]
        assert airlock.op(agent, young["token"], "count_unread").status_code == 200

        # Approved before the reload, collected after: within the new max_ttl.
        issued = collect(agent, waiting)["session"]
        assert ts(issued["expires_at"]) <= time.time() + clock_offset(airlock.home) + 1800 + 1

        advance(airlock, 31 * 60)
        assert airlock.op(agent, young["token"], "count_unread").status_code == 401

    shortened = {r["session"]: r for r in records(airlock, "session_shortened")}
    assert set(shortened) == {old["id"], young["id"]}
    assert shortened[young["id"]]["owner_uid"] == before[young["id"]]["uid"]
    assert shortened[young["id"]]["expires_at_was"] == pytest.approx(
        ts(before[young["id"]]["expires_at"]), abs=1
    )
    assert shortened[young["id"]]["expires_at"] == pytest.approx(start + 1800, abs=1)
    assert shortened[young["id"]]["max_ttl"] == 1800
    expired = [r for r in records(airlock, "session_expired") if r["session"] == old["id"]]
    assert len(expired) == 1
    reloaded = records(airlock, "config_reloaded")[0]["seq"]
    assert reloaded < shortened[old["id"]]["seq"] < expired[0]["seq"]
    assert airlock.audit_verify().returncode == 0


def test_a_start_with_a_lower_max_ttl_shortens_too(start_clocked: Callable[..., Airlock]) -> None:
    airlock = start_clocked()
    with airlock.client() as agent:
        session = airlock.session(agent, ttl="2h")
    airlock.stop()
    configure(airlock, max_ttl("30m"))
    airlock.start()
    with airlock.client() as agent:
        mine = listed(agent)[session["id"]]
    assert ts(mine["expires_at"]) - ts(mine["created_at"]) == pytest.approx(1800, abs=1)
    assert [r["session"] for r in records(airlock, "session_shortened")] == [session["id"]]


def test_raising_the_limits_changes_nothing(tmp_path: Path, openrouter: OpenRouterServer) -> None:
    openrouter.reset()
    airlock = start_llm(tmp_path / "home", openrouter)
    try:
        with airlock.client() as agent:
            session = airlock.session(agent, ttl="1h")
            spend_session(airlock, agent, 0.5)
            before, budget = listed(agent), budget_of(agent)

            def raise_limits(config: dict[str, Any]) -> None:
                config["sessions"] = {"max_ttl": "24h"}
                config["services"]["llm"]["max_usd"] = 10.0

            configure(airlock, raise_limits)
            reload(airlock)
            assert listed(agent) == before
            assert budget_of(agent) == budget
            assert airlock.op(agent, session["token"], "count_unread").status_code == 200
        airlock.restart()
        with airlock.client() as agent:
            after = listed(agent)
            assert {k: s["expires_at"] for k, s in after.items()} == {
                k: s["expires_at"] for k, s in before.items()
            }
            assert budget_of(agent) == budget
        assert not records(airlock, *CHANGES)
    finally:
        airlock.stop()


def chat(client: httpx.Client, token: str, max_tokens: int) -> httpx.Response:
    """$0.01 for each 1000 tokens of answer (test/flat), nothing for the prompt."""
    return llm_chat(client, token, model="test/flat", max_tokens=max_tokens)


def test_a_lower_max_usd_lowers_the_budgets_of_spend_sessions(
    tmp_path: Path, openrouter: OpenRouterServer
) -> None:
    openrouter.reset()
    airlock = start_llm(tmp_path / "home", openrouter, max_usd=5.0)
    try:
        with airlock.client() as agent:
            token = spend_session(airlock, agent, 5.0)
            assert chat(agent, token, 1000).status_code == 200
            assert budget_of(agent)["spent_usd"] == pytest.approx(0.01)
            waiting = airlock.request(agent, services=["llm"], access="spend", budget_usd=5.0)
            assert airlock.approve(agent, waiting["code"]).status_code == 200

            def service_cap(config: dict[str, Any]) -> None:
                config["services"]["llm"]["max_usd"] = 1.0

            configure(airlock, service_cap)
            reload(airlock)
            budget = budget_of(agent)
            assert budget["limit_usd"] == 1.0
            assert budget["spent_usd"] == pytest.approx(0.01)
            assert budget["left_usd"] == pytest.approx(0.99)

            def person_cap(config: dict[str, Any]) -> None:
                config["permissions"] = {"llm": {"max_usd": 0.03}}

            configure(airlock, person_cap)
            reload(airlock)
            assert budget_of(agent)["limit_usd"] == 0.03
            sent = len(openrouter.spending_calls())
            refused = chat(agent, token, 3000)  # up to $0.03; $0.02 left
            assert refused.status_code == 402, refused.text
            assert refused.json()["error"]["code"] == "budget_exhausted"
            assert len(openrouter.spending_calls()) == sent
            assert chat(agent, token, 1000).status_code == 200  # what fits still runs

            # Approved for $5 before the reloads, collected after: at most $0.03.
            issued = collect(agent, waiting)["session"]
            limits = {s["id"]: s["budget"]["limit_usd"] for s in listed(agent).values()}
            assert limits[issued["id"]] == 0.03
        lowered = records(airlock, "budget_lowered")
        assert [(r["limit_usd_was"], r["limit_usd"]) for r in lowered] == [(5.0, 1.0), (1.0, 0.03)]
        assert all(r["service"] == "llm" and r["spent_usd"] == 0.01 for r in lowered)
        assert lowered[0]["owner_uid"] == listed_uid(airlock)
        assert airlock.audit_verify().returncode == 0
    finally:
        airlock.stop()


def listed_uid(airlock: Airlock) -> int:
    with airlock.client() as agent:
        return int(next(iter(listed(agent).values()))["uid"])


def test_a_shortening_killed_before_its_database_write_is_applied_at_the_next_start(
    tmp_path: Path,
) -> None:
    """The reload is killed once ``session_shortened`` is on disk; the person then puts
    the old max_ttl back before the restart. The log says 30m: the session ends by then."""
    airlock = clocked(Airlock(tmp_path / "home")).start()
    try:
        with airlock.client() as agent:
            session = airlock.session(agent, ttl="2h")
            configure(airlock, max_ttl("30m"))
            killed_after_record(airlock, lambda: agent.post("/v1/reload"), "session_shortened")
        configure(airlock, max_ttl("8h"))
        airlock.start()
        with airlock.client() as agent:
            mine = listed(agent)[session["id"]]
            assert ts(mine["expires_at"]) - ts(mine["created_at"]) == pytest.approx(1800, abs=1)
            advance(airlock, 31 * 60)
            assert airlock.op(agent, session["token"], "count_unread").status_code == 401
        [recorded] = records(airlock, "session_shortened")
        [applied] = records(airlock, "session_shortened_at_start")
        assert applied["session"] == session["id"]
        assert applied["shortened_seq"] == recorded["seq"]
        assert applied["expires_at"] == recorded["expires_at"]
        assert airlock.audit_verify().returncode == 0
        airlock.restart()  # applied once
        assert len(records(airlock, "session_shortened_at_start")) == 1
    finally:
        airlock.stop()
    assert not leaked_secrets(airlock.home)


def test_a_budget_lowering_killed_before_its_database_write_is_applied_at_the_next_start(
    tmp_path: Path, openrouter: OpenRouterServer
) -> None:
    openrouter.reset()
    airlock = start_llm(tmp_path / "home", openrouter, max_usd=5.0)
    try:

        def cap(usd: float) -> Callable[[dict[str, Any]], None]:
            def change(config: dict[str, Any]) -> None:
                config["services"]["llm"]["max_usd"] = usd

            return change

        with airlock.client() as agent:
            spend_session(airlock, agent, 5.0)
            configure(airlock, cap(1.0))
            killed_after_record(airlock, lambda: agent.post("/v1/reload"), "budget_lowered")
        configure(airlock, cap(5.0))
        airlock.start()
        with airlock.client() as agent:
            assert budget_of(agent)["limit_usd"] == 1.0
        [recorded] = records(airlock, "budget_lowered")
        [applied] = records(airlock, "budget_lowered_at_start")
        assert applied["lowered_seq"] == recorded["seq"]
        assert applied["limit_usd"] == 1.0
        assert airlock.audit_verify().returncode == 0
    finally:
        airlock.stop()
