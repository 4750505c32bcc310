"""The maildir connector passes the connector contract every Airlock connector must pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from airlock.testing import ConnectorContract, ConnectorFactory
from airlock_mail.maildir import MaildirConnector
from tests.mail.conftest import TreeState, make_connector, tree_state
from tests.mail.corpus import build_corpus, by_label, write_maildir

PLAIN = by_label(build_corpus())["plain"]


class TestMaildirContract(ConnectorContract):
    connector_class = MaildirConnector
    read_params: ClassVar[dict[str, dict[str, Any]]] = {
        "list_folders": {},
        "list_messages": {"limit": 50, "since": "2025-01-01"},
        "search": {"query": 'is:unread newer_than:30d "code"'},
        "get_message": {"id": PLAIN.key},
        "count_unread": {"folder": "Archive"},
    }

    @pytest.fixture
    def connector_factory(self, tmp_path: Path) -> ConnectorFactory:
        self.root = write_maildir(tmp_path / "Mail", build_corpus(10))

        async def make() -> MaildirConnector:
            connector = make_connector(self.root)
            await connector.open()
            return connector

        return make

    def snapshot(self) -> TreeState:
        return tree_state(self.root)
