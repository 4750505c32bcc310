"""Isolated mode's connector host, without root: where it lives, the config key the
install writes, and the keeper that restarts it where systemd is not PID 1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from airlock.service import isolated
from airlock.service.keeper import Backoff, Keeper
from airlock.service.layout import CORE, DAEMONS, HOST, HOST_SOCKET
from airlock.service.supervisor import Supervised, children, running_pid
from airlock.service.supervisor import start as supervise
from airlock.service.supervisor import status as supervised_status
from airlock.service.supervisor import stop as unsupervise
from airlock.settings.config import load_config

# -- layout and config ----------------------------------------------------------------


def test_the_host_starts_first_and_neither_daemon_shares_a_directory_with_the_other() -> None:
    assert DAEMONS == (HOST, CORE)
    assert HOST.name == "airlock-connectors"
    assert HOST.state_dir == Path("/var/lib/airlock-connectors")
    mine = {HOST.state_dir, HOST.log_dir, HOST.run_dir}
    assert not mine & {CORE.state_dir, CORE.log_dir, CORE.run_dir}
    # The host's socket directory takes the core's group by setgid, not by membership.
    assert (HOST.directory_group, HOST.run_dir_mode) == ("airlock", 0o2750)
    assert HOST.socket_group is None
    assert (CORE.directory_group, CORE.run_dir_mode) == ("airlock-agents", 0o750)


def test_the_host_command_serves_only_the_core_s_uid_and_holds_no_secret() -> None:
    argv = HOST.arguments(peer_uid=4321)
    assert argv == [
        "-I",
        "-m",
        "airlock.connector_host",
        "--listen",
        "/run/airlock-connectors/host.sock",
        "--data-dir",
        "/var/lib/airlock-connectors",
        "--allow-uid",
        "4321",
    ]
    assert CORE.arguments() == ["-I", "-m", "airlock", "serve"]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(isolated, "CONFIG_DIR", tmp_path)
    return tmp_path


def _add_key(config_dir: Path, text: str) -> tuple[str, list[str]]:
    config = config_dir / "config.yaml"
    config.write_text(text)
    config.chmod(0o640)
    said: list[str] = []
    isolated._connector_host_key(said.append)
    return config.read_text(), said


def test_install_adds_the_connector_host_key_and_keeps_the_rest_of_the_file(
    config_dir: Path,
) -> None:
    text = "# my notes\nservices:\n  mail: {connector: maildir, path: /srv/mail}\n"
    written, said = _add_key(config_dir, text)
    assert written.startswith(text), "the person's file (comments too) is kept as it was"
    assert said == [
        f"added connector_host in {config_dir / 'config.yaml'}: "
        f"the core reaches the host at {HOST_SOCKET}"
    ]
    assert yaml.safe_load(written)["connector_host"] == {"socket": str(HOST_SOCKET), "timeout": 30}
    assert (config_dir / "config.yaml").stat().st_mode & 0o777 == 0o640
    loaded = load_config(config_dir / "config.yaml")
    assert loaded.connector_host.socket == HOST_SOCKET
    assert loaded.connector_host.timeout == 30

    again, said = _add_key(config_dir, written)
    assert again == written
    assert said == [f"kept connector_host in {config_dir / 'config.yaml'}"]


def test_a_connector_host_block_pointing_elsewhere_is_replaced_keeping_its_timeout(
    config_dir: Path,
) -> None:
    text = (
        "connector_host:\n  socket: /tmp/elsewhere.sock\n\n  timeout: 12\n"
        "# services follow\nservices: {}\n"
    )
    written, said = _add_key(config_dir, text)
    assert said[0].startswith("updated connector_host")
    assert "/tmp/elsewhere.sock" not in written
    assert "# services follow\nservices: {}\n" in written
    data = yaml.safe_load(written)
    assert data["connector_host"] == {"socket": str(HOST_SOCKET), "timeout": 12}


def test_personal_mode_s_config_has_no_host_socket(tmp_path: Path) -> None:
    assert load_config(tmp_path / "missing.yaml").connector_host.socket is None


# -- the keeper, with a fake clock and fake processes ---------------------------------


def test_backoff_starts_at_once_then_doubles_to_its_ceiling_and_resets_after_a_good_run() -> None:
    backoff = Backoff()
    pauses = [backoff.after(1.0) for _ in range(8)]
    assert pauses == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.after(60.0) == 0.0
    assert backoff.after(0.1) == 0.5


class FakeChild:
    def __init__(self, pid: int, status: int, on_wait: Callable[[], None] | None = None):
        self.pid, self.status, self.on_wait = pid, status, on_wait
        self.signals: list[int] = []

    def wait(self, timeout: float | None = None) -> int:
        if self.on_wait is not None:
            on_wait, self.on_wait = self.on_wait, None
            on_wait()
        return self.status

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def kill(self) -> None:
        self.signals.append(signal.SIGKILL)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.paused: list[float] = []

    def clock(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.paused.append(seconds)
        self.now += seconds


def test_the_keeper_starts_the_program_again_each_time_it_ends() -> None:
    started: list[Sequence[str]] = []
    fake = FakeTime()

    def spawn(argv: Sequence[str]) -> FakeChild:
        started.append(argv)
        fake.now += 2.0  # each run lasts 2 s
        return FakeChild(100 + len(started), -9)

    said: list[str] = []
    keeper = Keeper(["host", "--listen", "x"], spawn, fake.clock, fake.pause, said.append)
    assert keeper.run(most=4) == 0
    assert started == [["host", "--listen", "x"]] * 4
    assert said[1] == "keeper: it ended (killed by SIGKILL); starting it again in 0 s"
    assert said[3].endswith("starting it again in 0.5 s")
    assert said[5].endswith("starting it again in 1 s")
    assert sum(fake.paused) == pytest.approx(0.5 + 1.0 + 2.0)


def test_sigterm_is_passed_to_the_program_and_the_keeper_stops_restarting() -> None:
    children_made: list[FakeChild] = []
    keeper: Keeper

    def spawn(argv: Sequence[str]) -> FakeChild:
        child = FakeChild(7, 0, on_wait=lambda: keeper.stop())
        children_made.append(child)
        return child

    fake = FakeTime()
    keeper = Keeper(["host"], spawn, fake.clock, fake.pause, lambda line: None)
    assert keeper.run() == 0
    assert len(children_made) == 1
    assert children_made[0].signals == [signal.SIGTERM]


def test_a_program_that_cannot_start_is_tried_again_after_a_pause() -> None:
    attempts: list[int] = []
    fake = FakeTime()

    def spawn(argv: Sequence[str]) -> FakeChild:
        attempts.append(1)
        raise FileNotFoundError(2, "No such file or directory")

    said: list[str] = []
    keeper = Keeper(["/nowhere/python"], spawn, fake.clock, fake.pause, said.append)
    keeper.run(most=0)  # no start at all: returns at once
    assert attempts == []
    keeper.stopping = False

    def stop_after_three(seconds: float) -> None:
        fake.pause(seconds)
        if len(attempts) >= 3:
            keeper.stop()

    keeper.pause = stop_after_three
    keeper.run()
    assert len(attempts) >= 3
    assert "keeper: cannot start /nowhere/python: No such file or directory" in said


# -- the keeper for real: a killed host comes back ------------------------------------

FAKE_HOST = textwrap.dedent(
    """
    import os, signal, socket, sys
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()
    """
)


def _until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


@pytest.fixture
def kept_host(tmp_path: Path) -> Iterator[Supervised]:
    script = tmp_path / "fake_host.py"
    script.write_text(FAKE_HOST)
    sock = tmp_path / "run" / "host.sock"
    sock.parent.mkdir()
    daemon = Supervised(
        argv=[
            sys.executable,
            "-m",
            "airlock.service.keeper",
            "--",
            sys.executable,
            str(script),
            str(sock),
        ],
        env=dict(os.environ),
        pid_file=tmp_path / "run" / "host.pid",
        log_file=tmp_path / "log" / "host.log",
        socket=sock,
        ready="socket",
        marker="airlock.service.keeper",
    )
    try:
        yield daemon
    finally:
        unsupervise(daemon, timeout=10)


def test_a_killed_host_is_started_again_and_stop_ends_both(kept_host: Supervised) -> None:
    assert kept_host.socket is not None
    keeper, started = supervise(kept_host)
    assert started
    assert running_pid(kept_host) == keeper
    _until(lambda: children(keeper), "the keeper started the host")
    first = children(keeper)[0]
    facts = supervised_status(kept_host)
    assert facts["running"] is True
    assert (facts["pid"], facts["keeper_pid"], facts["listening"]) == (first, keeper, True)

    os.kill(first, signal.SIGKILL)
    _until(lambda: children(keeper) and children(keeper)[0] != first, "a new host")
    second = children(keeper)[0]

    def listening() -> bool:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(kept_host.socket))
            except OSError:
                return False
        return True

    _until(listening, "the new host listens")
    log = kept_host.log_file.read_text()
    assert "it ended (killed by SIGKILL); starting it again in 0 s" in log
    assert f"started {sys.executable} (pid {second})" in log

    assert unsupervise(kept_host) == keeper
    assert _zombie_or_gone(second)
    assert running_pid(kept_host) is None
    assert supervised_status(kept_host)["running"] is False


def _zombie_or_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_the_keeper_exits_0_on_sigterm_after_its_program_does(tmp_path: Path) -> None:
    script = tmp_path / "fake_host.py"
    script.write_text(FAKE_HOST)
    sock = tmp_path / "host.sock"
    keeper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airlock.service.keeper",
            "--",
            sys.executable,
            str(script),
            str(sock),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _until(sock.exists, "the host listens")
        host = children(keeper.pid)[0]
        keeper.send_signal(signal.SIGTERM)
        out, _ = keeper.communicate(timeout=20)
    finally:
        if keeper.poll() is None:
            keeper.kill()
            keeper.wait()
    assert keeper.returncode == 0, out
    assert _zombie_or_gone(host)
    assert "starting it again" not in out
