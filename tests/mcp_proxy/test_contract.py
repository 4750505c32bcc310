"""The mcp connector passes the contract every connector passes, with the operations the
npm filesystem server lists (its read-only tools are the reads)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from airlock.testing import ConnectorContract, ConnectorFactory
from airlock_mcp_proxy.connector import McpProxy
from tests.mcp_proxy.conftest import proxy


class TestMcpProxyContract(ConnectorContract):
    connector_class = McpProxy
    read_params: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    @pytest.fixture
    def connector_factory(self, files_settings: dict[str, Any], served: Path) -> ConnectorFactory:
        self.served = served
        notes = str(served / "notes.txt")
        type(self).read_params = {
            "read_file": {"path": notes},
            "read_text_file": {"path": notes},
            "read_media_file": {"path": notes},
            "read_multiple_files": {"paths": [notes]},
            "list_directory": {"path": str(served)},
            "list_directory_with_sizes": {"path": str(served)},
            "directory_tree": {"path": str(served)},
            "search_files": {"path": str(served), "pattern": "*.txt"},
            "get_file_info": {"path": notes},
            "list_allowed_directories": {},
        }

        async def make() -> McpProxy:
            connector = proxy(files_settings)
            await connector.open()
            return connector

        return make

    def snapshot(self) -> object:
        """Reads change no file in the served folder."""
        return sorted(
            (str(p.relative_to(self.served)), p.read_bytes())
            for p in self.served.rglob("*")
            if p.is_file()
        )
