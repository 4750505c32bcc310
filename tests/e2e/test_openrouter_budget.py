"""Spending through a real daemon: an agent approved for an amount chats until the money
runs out and is then refused before anything is sent. Calls racing for the last cents,
a call costing more than it reserved, and a daemon restart mid-session keep the books
right; the audit has model, tokens and cost but not the prompt; the key leaks nowhere."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import Airlock
from llm_harness import PROMPT, at_once, audit, budget_of, chat, spend_session, start_llm
from tests.openrouter.openrouter_server import OpenRouterServer


def test_an_agent_with_5_cents_chats_until_the_money_runs_out_then_nothing_is_sent(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    with llm.client() as client:
        token = spend_session(llm, client, 0.05)
        answered = 0
        while True:
            sent_before = len(openrouter.spending_calls())
            response = chat(client, token)
            if response.status_code != 200:
                break
            answered += 1
            assert response.json()["result"]["choices"][0]["message"]["content"]
            assert answered < 50
        assert response.status_code == 402, response.text
        assert response.json()["error"]["code"] == "budget_exhausted"
        assert len(openrouter.spending_calls()) == sent_before  # refused before anything was sent
        budget = budget_of(client)
    # Each call reserves up to 2000 tokens at $0.000002 plus the prompt: about 12 fit in $0.05.
    assert answered == 12
    assert budget["limit_usd"] == 0.05
    assert budget["spent_usd"] <= 0.05
    assert budget["left_usd"] == pytest.approx(0.05 - budget["spent_usd"])
    assert budget["reserved_usd"] == 0
    listing = llm.cli("sessions")
    assert listing.returncode == 0, listing.stderr
    assert f"${budget['spent_usd']:.4f} / ${budget['left_usd']:.4f} of $0.05" in listing.stdout
    log = llm.daemon.log.read_text()
    assert "spend up to $0.05 on llm for 1h" in log
    calls = [e for e in audit(llm, "operation") if e["op"] == "chat"]
    assert [e["outcome"] for e in calls] == ["ok"] * 12 + ["error"]
    last = calls[11]
    assert last["model"] == "test/cheap"
    assert last["completion_tokens"] == 2000
    assert last["cost_usd"] > 0
    assert last["budget_left_usd"] == pytest.approx(budget["left_usd"])
    assert set(last["params"]) == {"chars", "sha256"}
    assert calls[12]["error"] == "budget_exhausted"
    audit_text = (llm.paths.audit_dir / "audit.jsonl").read_text()
    assert "secret-prompt-marker" not in audit_text
    assert openrouter.key not in audit_text
    assert openrouter.key not in log


def test_calls_racing_for_the_last_cents_cannot_overspend(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    """test/flat costs exactly its worst case: 1000 tokens = $0.01 a call, five in $0.05."""
    with llm.client() as client:
        token = spend_session(llm, client, 0.05)

    def agent() -> int:
        with llm.client() as own:
            return chat(own, token, model="test/flat", max_tokens=1000).status_code

    assert at_once(15, agent) == [200] * 5 + [402] * 10
    assert len(openrouter.spending_calls()) == 5
    with llm.client() as client:
        budget = budget_of(client)
    assert budget["spent_usd"] == pytest.approx(0.05)
    assert budget["left_usd"] == 0


def test_a_call_that_costs_more_than_it_reserved_is_charged_in_full(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    openrouter.cost_factor *= 3  # the service bills three times the list price
    with llm.client() as client:
        token = spend_session(llm, client, 0.05)
        assert chat(client, token, model="test/flat", max_tokens=1000).status_code == 200
        assert budget_of(client)["spent_usd"] == pytest.approx(0.03)
        assert chat(client, token, model="test/flat", max_tokens=1000).status_code == 200
        budget = budget_of(client)
        refused = chat(client, token, model="test/flat", max_tokens=1000)
    assert budget["spent_usd"] == pytest.approx(0.06)  # over the budget: the money is gone
    assert budget["left_usd"] == 0
    assert refused.status_code == 402
    over = [e for e in audit(llm, "operation") if e.get("over_reservation")]
    assert len(over) == 2
    assert over[0]["reserved_usd"] == pytest.approx(0.01)
    assert over[0]["cost_usd"] == pytest.approx(0.03)


def test_money_spent_is_remembered_across_a_daemon_restart(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    with llm.client() as client:
        token = spend_session(llm, client, 0.05)
        for _ in range(3):
            assert chat(client, token, model="test/flat", max_tokens=1000).status_code == 200
    llm.restart()
    with llm.client() as client:
        assert budget_of(client)["spent_usd"] == pytest.approx(0.03)
        assert chat(client, token, model="test/flat", max_tokens=1000).status_code == 200
        assert chat(client, token, model="test/flat", max_tokens=1000).status_code == 200
        assert chat(client, token, model="test/flat", max_tokens=1000).status_code == 402
        budget = budget_of(client)
    assert budget["spent_usd"] == pytest.approx(0.05)
    assert len(openrouter.spending_calls()) == 5


def test_the_person_is_asked_for_the_amount_and_the_agent_cannot_exceed_max_usd(
    tmp_path: Path, openrouter: OpenRouterServer
) -> None:
    openrouter.reset()
    airlock = start_llm(tmp_path / "capped", openrouter, max_usd=0.25)
    try:
        with airlock.client() as client:
            created = airlock.request(
                client, services=["llm"], access="spend", budget_usd=500, reason="a novel"
            )
            pending = client.get("/v1/requests").json()["requests"]
            assert [r["budget_usd"] for r in pending] == [0.25]
            wrong = client.post(
                "/v1/requests",
                json={"services": ["llm"], "access": "read", "budget_usd": 1, "reason": "x"},
            )
            assert wrong.status_code == 400
            assert wrong.json()["error"]["field"] == "budget_usd"
            read_only = airlock.session(client, services=["llm"], reason="look at models")
            refused = chat(client, read_only["token"])
            assert refused.status_code == 403
            models = client.post(
                "/v1/ops/llm/list_models",
                json={"params": {}},
                headers={"Authorization": f"Bearer {read_only['token']}"},
            )
            assert models.status_code == 200
            assert created["code"] in airlock.daemon.log.read_text()
        assert "spend up to $0.25 on llm for 1h" in airlock.daemon.log.read_text()
        assert openrouter.spending_calls() == []
    finally:
        airlock.stop()


def test_upstream_refusals_reach_the_agent_cleanly_and_never_the_key(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    with llm.client() as client:
        token = spend_session(llm, client, 0.5)
        openrouter.fail("/chat/completions", 429, retry_after=7)
        limited = chat(client, token)
        openrouter.fail("/chat/completions", 402)
        broke = chat(client, token)
        openrouter.fail("/chat/completions", 503)
        down = chat(client, token)
        openrouter.fail("/chat/completions", 403)  # moderation flagged the prompt
        flagged = chat(client, token)
        openrouter.fail("/chat/completions", 401)
        bad_key = chat(client, token)
        outside = chat(client, token, model="other/model")
        budget = budget_of(client)
    assert (limited.status_code, limited.headers.get("Retry-After")) == (429, "7")
    assert (broke.status_code, broke.json()["error"]["code"]) == (402, "service_out_of_credit")
    assert (down.status_code, down.json()["error"]["code"]) == (502, "service_refused")
    assert (flagged.status_code, flagged.json()["error"]["code"]) == (502, "service_refused")
    assert "flagged by moderation" in flagged.json()["error"]["message"]
    assert (bad_key.status_code, bad_key.json()["error"]["code"]) == (502, "service_auth_failed")
    assert outside.status_code == 403
    for answer in (limited, broke, down, flagged, bad_key, outside):
        assert openrouter.key not in answer.text
    assert budget["spent_usd"] == 0  # refused calls cost nothing
    assert budget["reserved_usd"] == 0
    assert len(openrouter.spending_calls()) == 5  # the model outside the allow-list never left
    # The person, not the agent, hears about the key (console notices go to the daemon log).
    assert "llm refused the credentials stored for it" in llm.daemon.log.read_text()
    assert "credentials add" not in bad_key.text
    assert len(audit(llm, "credentials_rejected")) == 1


@pytest.mark.parametrize(
    ("waits", "status"),
    [
        # The waits leave a slow machine time to get the request to the service first
        # (the test is of a call the service has): 1 s and 0.5 s raced it.
        ({"config": {"connector_host": {"timeout": 3}}}, 504),  # the daemon gives up
        ({"timeout": 2}, 502),  # the connector does (its answer lost, in the host)
    ],
)
def test_a_call_the_service_took_but_never_answered_in_time_is_counted_at_its_reservation(
    tmp_path: Path, openrouter: OpenRouterServer, waits: dict[str, Any], status: int
) -> None:
    """The agent asks for an answer that takes longer than Airlock waits (a long answer of
    a slow model): the service has the request and bills it, so the budget must count it,
    or an agent could spend without end by asking for answers too slow to wait for."""
    openrouter.reset()
    airlock = start_llm(tmp_path / "slow", openrouter, **waits)
    try:
        with airlock.client() as client:
            token = spend_session(airlock, client, 0.05)
            openrouter.held = threading.Event()  # the model is still writing its answer
            gave_up = chat(client, token, model="test/flat", max_tokens=1000)
            openrouter.held.set()  # ... and finishes it, billed, after Airlock gave up
            budget = budget_of(client)
    finally:
        airlock.stop()
    assert gave_up.status_code == status, gave_up.text
    assert len(openrouter.spending_calls()) == 1
    assert budget["spent_usd"] == pytest.approx(0.01)  # its worst case: 1000 tokens
    assert budget["reserved_usd"] == 0
    [record] = [e for e in audit(airlock, "operation") if e["op"] == "chat"]
    assert record["outcome"] == "error"
    assert record["cost_usd"] == pytest.approx(0.01)


def test_a_service_reporting_an_absurd_cost_ends_the_budget_and_the_answer_still_arrives(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    """usage.cost of $10 trillion (a broken or hostile service): more than the state
    database counts in one number. The call is settled (not left held), the budget is
    spent, and the agent has the answer it was billed for."""
    openrouter.cost_factor = Decimal("1e15")
    with llm.client() as client:
        token = spend_session(llm, client, 0.05)
        billed = chat(client, token, model="test/flat", max_tokens=1000)
        budget = budget_of(client)
        refused = chat(client, token, model="test/flat", max_tokens=1000)
    assert billed.status_code == 200, billed.text
    assert (budget["left_usd"], budget["reserved_usd"]) == (0, 0)
    assert budget["spent_usd"] > 0.05
    assert refused.status_code == 402
    [record, _] = [e for e in audit(llm, "operation") if e["op"] == "chat"]
    assert record["outcome"] == "ok"
    assert record["cost_usd"] == pytest.approx(1e13)  # what the service said, on record


def test_a_session_ending_while_its_answer_streams_ends_the_answer(
    tmp_path: Path, openrouter: OpenRouterServer
) -> None:
    """The spend session's hour passes mid-answer (the daemon's clock moved on, a read
    session keeping the service open): the rest of the answer is not relayed."""
    openrouter.reset()
    openrouter.answer_tokens, openrouter.token_delay = 200, 0.05
    launcher = [sys.executable, str(Path(__file__).with_name("clocked_serve.py"))]
    airlock = start_llm(tmp_path / "clocked", openrouter, command=launcher)
    body = {"model": "test/cheap", "messages": [{"role": "user", "content": PROMPT}]}
    events: list[dict[str, Any]] = []
    try:
        with airlock.client() as client:
            airlock.session(client, services=["llm"], reason="models", ttl="8h")
            token = spend_session(airlock, client, 0.05)  # for 1h
        with (
            airlock.client(Authorization=f"Bearer {token}") as client,
            client.stream(
                "POST",
                "/v1/openai/llm/chat/completions",
                json={**body, "max_tokens": 200, "stream": True},
            ) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    events.append(json.loads(line.removeprefix("data: ")))
                    if len(events) == 1:
                        (airlock.home / "clock-offset").write_text("7200")  # two hours on
    finally:
        airlock.stop()
    assert events[-1].get("error", {}).get("code") == "unauthenticated", events[-1]
    assert len(events) < 150, "the answer went on after the session ended"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_streamed_answer_the_agent_stops_reading_is_ended_and_settled(
    tmp_path: Path, openrouter: OpenRouterServer
) -> None:
    """Sixteen streamed answers of 4,000 tokens whose agent reads the first bytes, then
    nothing: each event waited without end for the agent to take it, the service's chunks
    gathered in the daemon (~6 MB a stream, kept for as long as the agent kept the
    connection) and the budget stayed reserved. Now a stream whose event is not taken
    within the idle timeout ends, its reservation is settled and its record written."""
    openrouter.reset()
    openrouter.answer_tokens, openrouter.token_delay = 4000, 0.0
    config = {"daemon": {"idle_timeout": "2s"}, "permissions": {"rate_limit": 100000}}
    airlock = start_llm(tmp_path / "unread", openrouter, config=config)
    body = {
        "model": "test/cheap",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 4000,
        "stream": True,
    }
    data = json.dumps(body).encode()
    unread: list[socket.socket] = []
    try:
        with airlock.client() as client:
            token = spend_session(airlock, client, 1.0)
        assert airlock.proc is not None
        before = _rss_mib(airlock.proc.pid)
        head = (
            "POST /v1/openai/llm/chat/completions HTTP/1.1\r\nHost: airlock\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        for _ in range(16):
            conn = socket.socket(socket.AF_UNIX)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            conn.connect(str(airlock.paths.socket))
            conn.sendall(head + data)
            assert conn.recv(64).startswith(b"HTTP/1.1 200")
            unread.append(conn)  # and never read again
        deadline = time.monotonic() + 20
        with airlock.client() as client:
            while time.monotonic() < deadline:
                ended = [r for r in audit(airlock, "operation") if r.get("stream")]
                if len(ended) == 16 and budget_of(client)["reserved_usd"] == 0:
                    break
                time.sleep(0.2)
            budget = budget_of(client)
        grown = _rss_mib(airlock.proc.pid) - before
    finally:
        for conn in unread:
            conn.close()
        airlock.stop()
    assert len(ended) == 16, "the streams were not ended while their agent held them"
    assert budget["reserved_usd"] == 0
    assert {r["outcome"] for r in ended} == {"error"}
    assert grown < 48, f"the daemon grew by {grown:.0f} MiB"
