"""Fixtures shared by the core tests: a clock that only moves when told, a real state store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.common.clock import FakeClock
from airlock.state.store import StateStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[StateStore]:
    with StateStore(data_dir / "state.db") as opened:
        yield opened
