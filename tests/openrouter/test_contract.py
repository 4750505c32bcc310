"""The openrouter connector passes the contract every connector passes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from airlock.testing import ConnectorContract, ConnectorFactory
from airlock_openrouter.connector import OpenRouterConnector
from tests.openrouter.conftest import connector_for
from tests.openrouter.openrouter_server import OpenRouterServer


class TestOpenRouterContract(ConnectorContract):
    connector_class = OpenRouterConnector
    read_params: ClassVar[Mapping[str, Mapping[str, Any]]] = {"list_models": {}, "usage": {}}
    spend_params: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "chat": {"model": "test/cheap", "messages": [{"role": "user", "content": "hi"}]},
        "embed": {"model": "test/embed", "input": "hello"},
    }

    @pytest.fixture
    def connector_factory(self, server: OpenRouterServer) -> ConnectorFactory:
        self.server = server

        async def make() -> OpenRouterConnector:
            connector = connector_for(server)
            await connector.open()
            return connector

        return make

    def snapshot(self) -> object:
        """Reads and quotes never spend: no chat or embedding call reaches the service."""
        return len(self.server.spending_calls())
