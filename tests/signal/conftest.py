"""Fixtures of the signal notifier tests: a local signal-cli-rest-api in each mode and a
local signal-cli JSON-RPC socket, the settings that point the real notifier at either,
and either as the shared scenarios drive a messenger (tests/notifier_harness/scenarios.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import airlock_notify_signal.plugin as signal_plugin
from tests.notifier_harness.waiting import eventually
from tests.signal.signal_api_server import BOT, PERSON, STRANGER, SignalApiServer
from tests.signal.signal_cli_socket import SignalCliSocketServer


@pytest.fixture(params=["normal", "json-rpc", "socket"])
def signal_api(request: pytest.FixtureRequest) -> Iterator[SignalApiServer]:
    """The REST API in both modes (the notifier finds out which from GET /v1/about), and
    signal-cli's own socket (in its default receive mode: each message comes twice)."""
    server = (
        SignalCliSocketServer() if request.param == "socket" else SignalApiServer(request.param)
    )
    yield server
    server.close()


@pytest.fixture(params=["normal", "json-rpc"])
def rest_api(request: pytest.FixtureRequest) -> Iterator[SignalApiServer]:
    """The REST API alone, in both modes (for what only it has: GET /v1/about)."""
    server = SignalApiServer(request.param)
    yield server
    server.close()


def settings_for(server: SignalApiServer, **extra: Any) -> dict[str, Any]:
    way_in = (
        {"socket": server.path}
        if isinstance(server, SignalCliSocketServer)
        else {"api_base": server.url}
    )
    return {
        **way_in,
        "number": BOT,
        "recipient": PERSON,
        "poll_timeout": 2,
        "retry_initial": 0.05,
        "retry_max": 0.2,
        **extra,
    }


@dataclass
class SignalDouble:
    """The REST API as a :class:`~tests.notifier_harness.scenarios.MessengerDouble`: a
    reply quotes the prompt; a prompt's id is its timestamp."""

    server: SignalApiServer
    plugin = signal_plugin
    channel = "signal"

    def settings(self, **extra: Any) -> dict[str, Any]:
        return settings_for(self.server, **extra)

    def credentials(self) -> None:
        return None

    async def prompt(self, code: str) -> int:
        await eventually(lambda: self.server.prompt_for(code), within=10)
        timestamp = self.server.prompt_for(code)
        assert timestamp is not None
        return timestamp

    def say(self, text: str, *, to: int | None = None, age: float = 0.0) -> None:
        self.server.message(text, quote=to, age=age)

    def stranger_says(self, text: str) -> str:
        self.server.message(text, source=STRANGER, uuid="u-stranger")
        return STRANGER

    def others_answer(self, text: str, prompt: int) -> list[str]:
        self.server.quote_reply(text, prompt, source=STRANGER, uuid="stranger-uuid")
        self.server.react("👎", prompt, source=None, uuid="hidden-number-uuid")
        self.server.quote_reply(text, prompt, group=True)  # the person, in a group
        return [STRANGER, "hidden-number-uuid", f"{PERSON} in a group"]

    def texts(self) -> list[str]:
        return self.server.texts()


@pytest.fixture
def messenger(signal_api: SignalApiServer) -> SignalDouble:
    return SignalDouble(signal_api)
