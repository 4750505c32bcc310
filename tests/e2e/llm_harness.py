"""A daemon with an ``llm`` service on the local OpenRouter, and the calls the spending
tests make: a chat call, a spend session, the budget as ``airlock sessions`` shows it,
the audit."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from daemon_harness import Airlock
from tests.openrouter.openrouter_server import OpenRouterServer

from airlock.security.vault import TotpKey, Vault

PROMPT = "Draft a polite reply to Alice about the quarterly figures (secret-prompt-marker)."


def start_llm(
    home: Path,
    server: OpenRouterServer,
    *,
    config: dict[str, Any] | None = None,
    command: list[str] | None = None,
    **settings: Any,
) -> Airlock:
    """`airlock serve` with service ``llm`` (models test/*, max_usd $1), its key stored;
    *config*: more of config.yaml; *command*: the daemon's launcher instead of `serve`."""
    llm = {"connector": "openrouter", "api_base": server.url, "models": ["test/*"]}
    services = {"services": {"llm": {**llm, "max_usd": 1.0, **settings}}}
    airlock = Airlock(home, overrides={**(config or {}), **services})
    if command is not None:
        airlock.daemon.command = command
    Vault(airlock.paths.vault_file, TotpKey(airlock.phone.secret)).set(
        "llm", {"api_key": server.key}
    )
    return airlock.start()


def spend_session(airlock: Airlock, client: httpx.Client, budget: float) -> str:
    """The token of a session approved to spend up to *budget* dollars on ``llm``."""
    session = airlock.session(
        client, services=["llm"], access="spend", budget_usd=budget, reason="draft my replies"
    )
    assert session["access"] == "spend"
    return str(session["token"])


def budget_of(client: httpx.Client) -> dict[str, float]:
    """The spend session's budget as ``GET /v1/sessions`` lists it."""
    sessions = client.get("/v1/sessions").json()["sessions"]
    [spend] = [s for s in sessions if s["access"] == "spend"]
    budget: dict[str, float] = spend["budget"]
    return budget


def audit(airlock: Airlock, event: str) -> list[dict[str, Any]]:
    lines = (airlock.paths.audit_dir / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def chat(
    client: httpx.Client, token: str, *, model: str = "test/cheap", max_tokens: int = 2000
) -> httpx.Response:
    """One chat call with :data:`PROMPT` on the session *token* (``llm`` on the local
    OpenRouter, whose test models each have their own price)."""
    params = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
    }
    return client.post(
        "/v1/ops/llm/chat",
        json={"params": params},
        headers={"Authorization": f"Bearer {token}"},
    )


def at_once(count: int, call: Callable[[], int]) -> list[int]:
    """*call* from *count* threads released together (agents racing for the last cents);
    the statuses they got, sorted."""
    start = threading.Barrier(count)
    statuses: list[int] = []

    def agent() -> None:
        start.wait()
        statuses.append(call())

    threads = [threading.Thread(target=agent) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)
