"""Fixtures of the signal notifier tests: a local signal-cli-rest-api in each mode, and
the settings that point the real notifier at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.signal.signal_api_server import BOT, PERSON, SignalApiServer


@pytest.fixture(params=["normal", "json-rpc"])
def signal_api(request: pytest.FixtureRequest) -> Iterator[SignalApiServer]:
    """The REST API in both modes: the notifier finds out which from GET /v1/about."""
    server = SignalApiServer(mode=request.param)
    yield server
    server.close()


def settings_for(server: SignalApiServer, **extra: Any) -> dict[str, Any]:
    return {
        "api_base": server.url,
        "number": BOT,
        "recipient": PERSON,
        "poll_timeout": 2,
        "retry_initial": 0.05,
        "retry_max": 0.2,
        **extra,
    }
