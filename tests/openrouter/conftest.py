"""Fixtures of the openrouter connector tests: a local OpenRouter with a canary key, and
connectors pointed at it through ``api_base`` like any configured service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airlock_openrouter.connector import OpenRouterConnector
from tests.openrouter.openrouter_server import OpenRouterServer


@pytest.fixture(scope="module")
def shared_server() -> Iterator[OpenRouterServer]:
    server = OpenRouterServer()
    yield server
    server.close()


@pytest.fixture
def server(shared_server: OpenRouterServer) -> OpenRouterServer:
    """The module's server, back at its defaults for each test."""
    shared_server.reset()
    return shared_server


def settings_for(server: OpenRouterServer, **extra: Any) -> dict[str, Any]:
    return {"api_base": server.url, "models": ["test/*"], **extra}


def connector_for(
    server: OpenRouterServer, *, key: str | None = None, service: str = "llm", **extra: Any
) -> OpenRouterConnector:
    settings = OpenRouterConnector.parse_settings(settings_for(server, **extra), service=service)
    credentials = OpenRouterConnector.parse_credentials(
        {"api_key": key or server.key}, service=service
    )
    return OpenRouterConnector(settings, credentials, service=service)
