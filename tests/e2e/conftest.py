from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import Airlock


@pytest.fixture
def start_airlock(tmp_path: Path) -> Iterator[Callable[..., Airlock]]:
    """Start a daemon with extra config lines; every started daemon is stopped after."""
    started: list[Airlock] = []

    def start(overrides: dict[str, Any] | None = None, name: str = "home") -> Airlock:
        running = Airlock(tmp_path / name, overrides=overrides or {}).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def airlock(start_airlock: Callable[..., Airlock]) -> Airlock:
    return start_airlock()
