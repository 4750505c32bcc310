"""End to end through a real daemon process: an agent asks over the socket, the prompt
goes to the local signal-cli-rest-api, the "person" answers there, and the agent's
long-poll gets the outcome."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notifier_harness.daemon import NotifierDaemon, collect, request
from tests.notifier_harness.waiting import eventually
from tests.signal.conftest import settings_for
from tests.signal.signal_api_server import STRANGER, SignalApiServer


@pytest.fixture
def daemon(tmp_path: Path, signal_api: SignalApiServer) -> Iterator[NotifierDaemon]:
    running = NotifierDaemon(tmp_path / "home", "signal", settings_for(signal_api)).start()
    yield running
    running.stop()


async def prompt_of(server: SignalApiServer, code: str) -> int:
    await eventually(lambda: server.prompt_for(code), within=10)
    return server.prompt_for(code) or 0


def test_a_quote_reply_approves_and_a_thumbs_down_denies(
    daemon: NotifierDaemon, signal_api: SignalApiServer
) -> None:
    async def main() -> None:
        async with daemon.client() as agent:
            first, second = await request(agent), await request(agent)
            prompt = await prompt_of(signal_api, first["code"])
            signal_api.quote_reply(daemon.phone.code(), prompt, source=STRANGER, uuid="x")
            signal_api.quote_reply(daemon.phone.code(), prompt)
            assert (await collect(agent, first))["status"] == "approved"
            signal_api.react("👎", await prompt_of(signal_api, second["code"]))
            assert (await collect(agent, second))["status"] == "denied"

    asyncio.run(main())
    (ignored,) = daemon.audit("reply_ignored")
    assert ignored["sender"] == STRANGER
    assert {e["channel"] for e in daemon.audit("totp_verified")} == {"signal"}


def test_signal_going_down_and_coming_back(
    daemon: NotifierDaemon, signal_api: SignalApiServer
) -> None:
    async def main() -> None:
        signal_api.stop()
        async with daemon.client() as agent:

            async def unreachable() -> bool:
                health = (await agent.get("/v1/status")).json()["notifiers"]
                return any(h["detail"].startswith("unreachable") for h in health)

            created = await request(agent)
            await eventually(unreachable, within=10)

            def signal_health_in_status() -> dict[str, Any]:
                status = daemon.cli("status", "--json")
                notifiers = json.loads(status.stdout)["daemon"]["notifiers"]
                found: dict[str, Any] = {n["name"]: n for n in notifiers}["signal"]
                return found

            # The receive loop alternates between waiting and retrying: look until
            # `airlock status` catches it waiting (a single look could race a retry).
            await eventually(
                lambda: "retrying in" in signal_health_in_status()["detail"], within=15
            )
            assert not signal_health_in_status()["ok"]
            approved = daemon.cli("approve", created["code"], stdin=daemon.phone.code() + "\n")
            assert approved.returncode == 0, approved.stderr
            assert (await collect(agent, created))["status"] == "approved"
            signal_api.start()
            again = await request(agent)
            signal_api.quote_reply(daemon.phone.code(), await prompt_of(signal_api, again["code"]))
            assert (await collect(agent, again))["status"] == "approved"

    asyncio.run(main())
