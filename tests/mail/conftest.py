"""Fixtures for the maildir tests: the shared corpus written as a real Maildir tree."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from airlock.common.clock import FakeClock
from airlock.testing import run
from airlock_mail.maildir import MaildirConnector
from tests.mail.corpus import NOW, CorpusMessage, build_corpus, write_maildir

FILLER = 40  # plain messages besides the special ones, so limits and order matter

TreeState = dict[str, tuple[int, int, str]]


def tree_state(root: Path) -> TreeState:
    """Every file under *root*: relative path -> (size, mtime in ns, sha256 of content).
    Equal states mean nothing was renamed, moved, rewritten or touched."""
    state: TreeState = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            state[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns, digest)
    return state


def make_connector(root: Path) -> MaildirConnector:
    """A maildir connector on *root* whose clock stands at the corpus's NOW."""
    settings = MaildirConnector.parse_settings({"path": str(root)}, service="archive")
    credentials = MaildirConnector.parse_credentials({}, service="archive")
    return MaildirConnector(
        settings, credentials, service="archive", clock=FakeClock(NOW.timestamp())
    )


@pytest.fixture(scope="session")
def corpus() -> list[CorpusMessage]:
    return build_corpus(FILLER)


@pytest.fixture
def maildir(tmp_path: Path, corpus: list[CorpusMessage]) -> Path:
    return write_maildir(tmp_path / "Mail", corpus)


@pytest.fixture
def connector(maildir: Path) -> MaildirConnector:
    return make_connector(maildir)


@pytest.fixture
def call(connector: MaildirConnector) -> Callable[[str], Any]:
    """``call("list_messages", limit=5)``: one operation through Connector.call, as core
    makes it (params validated), on a fresh event loop."""

    def invoke(operation: str, **params: Any) -> Any:
        async def once() -> BaseModel:
            await connector.open()
            return await connector.call(operation, params)

        return run(once())

    return invoke
