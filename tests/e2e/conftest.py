from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import Airlock, leaked_secrets


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


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log_or_audit_line(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The canary scan: after the whole run, no planted secret (TOTP secret, session
    token, claim, password) appears in any daemon log or audit file the tests produced."""
    yield
    homes = {p.parent for p in tmp_path_factory.getbasetemp().rglob("daemon.log")}
    leaks = [leak for home in homes for leak in leaked_secrets(home)]
    assert not leaks, f"secrets leaked into logs or audit lines: {leaks}"
