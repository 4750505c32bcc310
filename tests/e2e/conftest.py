from __future__ import annotations

import fcntl
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import OTHER_USER, Airlock, clocked, leaked_secrets, needs_root, remember
from llm_harness import start_llm
from tests.openrouter.openrouter_server import OpenRouterServer

FIRST = ("test_isolated.py", "test_gcal.py")
"""Modules that mostly wait (an install, the phone's next time step) go first: ``uv run
nox`` hands whole modules to two workers (``--dist loadfile``), and a long one handed out
last would leave a worker idle."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in FIRST)  # stable: the rest keep order


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


@pytest.fixture
def start_clocked(tmp_path: Path) -> Iterator[Callable[..., Airlock]]:
    """:func:`start_airlock` for daemons on a clock the test moves (``advance``)."""
    started: list[Airlock] = []

    def start(overrides: dict[str, Any] | None = None) -> Airlock:
        airlock = clocked(Airlock(tmp_path / f"home{len(started)}", overrides=overrides or {}))
        started.append(airlock.start())
        return airlock

    yield start
    for airlock in started:
        airlock.stop()


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log_or_audit_line(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The canary scan: after the whole run, no planted secret (TOTP secret, session
    token, claim, password) appears in any daemon log or audit file the tests produced.
    Under xdist each worker scans its own base directory (its tests' daemons log there)
    with the secrets its tests planted."""
    yield
    homes = {p.parent for p in tmp_path_factory.getbasetemp().rglob("daemon.log")}
    leaks = [leak for home in homes for leak in leaked_secrets(home)]
    assert not leaks, f"secrets leaked into logs or audit lines: {leaks}"


_OTHER_USER_EXISTED = pytest.StashKey[bool]()
OTHER_USER_LOCK = Path(tempfile.gettempdir()) / "airlock-e2e-other-user.lock"


def _runs_the_session(config: pytest.Config) -> bool:
    """This process is the run itself, not one of pytest-xdist's workers."""
    return not hasattr(config, "workerinput")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def pytest_sessionstart(session: pytest.Session) -> None:
    if _runs_the_session(session.config):
        session.config.stash[_OTHER_USER_EXISTED] = _user_exists(OTHER_USER)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The machine is left as the run found it: the second user the tests added (once,
    for every worker) is removed after the last worker is done."""
    if not _runs_the_session(session.config):
        return
    if session.config.stash.get(_OTHER_USER_EXISTED, True) or not _user_exists(OTHER_USER):
        return
    removed = subprocess.run(["userdel", OTHER_USER], capture_output=True, text=True)
    if removed.returncode != 0:
        print(f"could not remove the test user {OTHER_USER}: {removed.stderr.strip()}")


@pytest.fixture
def other_uid() -> int:
    needs_root("needs root to create and switch to a second real user")
    # One worker at a time looks and adds: two workers adding the user at once made it
    # twice, a test holding the first one's uid while the second one's stood.
    with OTHER_USER_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _user_exists(OTHER_USER):
            add = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            subprocess.run([*add, OTHER_USER], check=True)
        return pwd.getpwnam(OTHER_USER).pw_uid


@pytest.fixture
def shared_airlock(other_uid: int) -> Iterator[Airlock]:
    """A daemon the other user may reach (as in isolated mode with two agent users)."""
    root = Path(tempfile.mkdtemp(prefix="airlock-e2e-"))
    root.chmod(0o711)
    airlock = Airlock(root / "home", overrides={"daemon": {"allowed_uids": [other_uid]}})
    airlock.home.chmod(0o711)
    airlock.start()
    # What group membership gives in isolated mode: the other user may reach the socket.
    airlock.paths.run_dir.chmod(0o711)
    airlock.paths.socket.chmod(0o666)
    try:
        yield airlock
    finally:
        airlock.stop()
        leaks = leaked_secrets(airlock.home)
        shutil.rmtree(root, ignore_errors=True)
    assert not leaks, f"secrets leaked into logs or audit lines: {leaks}"


@pytest.fixture(scope="module")
def openrouter() -> Iterator[OpenRouterServer]:
    """The local OpenRouter for a module's spending tests, its key planted."""
    running = OpenRouterServer()
    remember(running.key)
    yield running
    running.close()


@pytest.fixture
def llm(tmp_path: Path, openrouter: OpenRouterServer) -> Iterator[Airlock]:
    """A daemon with service ``llm`` on the local OpenRouter, its key in the vault; one
    for each test (its phone needs no wait between approvals)."""
    openrouter.reset()
    airlock = start_llm(tmp_path / "home", openrouter)
    yield airlock
    airlock.stop()
