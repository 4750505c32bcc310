"""``airlock service`` in personal mode where a systemd *user* manager runs.

No user manager runs on these machines, so a stand-in ``systemctl`` goes first on PATH:
a small program that records each argv it gets and answers as ``systemctl --user`` does
(``is-system-running``, ``is-active``, ``start``/``stop``/``enable --now``/``disable
--now``/``daemon-reload``, keeping the unit's state in a file). Airlock's own code runs
unchanged and calls it as it would call the real one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

STAND_IN = r'''#!/usr/bin/env python3
"""systemctl, as far as a user manager goes: records argv, answers like systemctl."""
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_SYSTEMCTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
state = Path(os.environ["FAKE_SYSTEMCTL_STATE"])
if os.environ.get("FAKE_USER_MANAGER") != "running":
    sys.stderr.write("Failed to connect to bus: No medium found\n")
    sys.exit(1)
if args[:1] != ["--user"]:
    sys.stderr.write("System has not been booted with systemd as init system (PID 1).\n")
    sys.exit(1)
verb, rest = args[1], [a for a in args[2:] if not a.startswith("--")]
now = "--now" in args
if verb == "is-system-running":
    print("running")
elif verb == "is-active":
    active = state.exists() and state.read_text() == "active"
    print("active" if active else "inactive")
    sys.exit(0 if active else 3)
elif verb in ("start",) or (verb == "enable" and now):
    state.write_text("active")
elif verb in ("stop",) or (verb == "disable" and now):
    state.write_text("inactive")
elif verb in ("daemon-reload", "enable", "disable"):
    pass
else:
    sys.stderr.write(f"Unknown command verb {verb}.\n")
    sys.exit(1)
'''


class Person:
    """The person's shell: AIRLOCK_HOME and XDG dirs of their own, the stand-in on PATH."""

    def __init__(self, root: Path, *, manager: bool) -> None:
        bin_dir = root / "bin"
        bin_dir.mkdir()
        tool = bin_dir / "systemctl"
        tool.write_text(STAND_IN.replace("/usr/bin/env python3", sys.executable, 1))
        tool.chmod(0o755)
        self.log = root / "systemctl.log"
        self.home = root / "home"
        self.home.mkdir()
        (self.home / "config.yaml").write_text("services: {}\n")
        self.unit = root / "xdg" / "systemd" / "user" / "airlock.service"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "XDG_"))}
        self.env.update(
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            AIRLOCK_HOME=str(self.home),
            XDG_CONFIG_HOME=str(root / "xdg"),
            FAKE_SYSTEMCTL_LOG=str(self.log),
            FAKE_SYSTEMCTL_STATE=str(root / "unit-state"),
            FAKE_USER_MANAGER="running" if manager else "none",
        )

    def airlock(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "airlock", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def calls(self) -> list[list[str]]:
        """What systemctl was asked since the last look (and forget it)."""
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        self.log.unlink()
        return [json.loads(line) for line in lines]

    def status(self) -> dict[str, Any]:
        facts: dict[str, Any] = json.loads(self.airlock("service", "status", "--json").stdout)
        return facts


def changes(calls: list[list[str]]) -> list[list[str]]:
    """The calls that change something (not the questions)."""
    return [c for c in calls if c[1] not in ("is-system-running", "is-active")]


@pytest.fixture
def with_manager(tmp_path: Path) -> Person:
    return Person(tmp_path, manager=True)


def test_install_enables_and_starts_the_unit_when_a_user_manager_runs(
    with_manager: Person,
) -> None:
    person = with_manager
    done = person.airlock("service", "install")
    assert person.unit.exists()
    assert f"ExecStart={sys.executable} -m airlock serve" in person.unit.read_text()
    assert f"Environment=AIRLOCK_HOME={person.home}" in person.unit.read_text()
    calls = person.calls()
    assert ["--user", "is-system-running"] in calls
    assert changes(calls) == [
        ["--user", "daemon-reload"],
        ["--user", "enable", "--now", "airlock.service"],
    ]
    assert "enabled and started airlock.service (systemd --user)" in done.stdout
    assert not (person.home / "run" / "airlock.pid").exists()  # no daemon of our own

    facts = person.status()
    assert facts["manager"] == "systemd --user"
    assert facts["running"] is True
    assert ["--user", "is-active", "airlock.service"] in person.calls()


def test_start_stop_status_and_uninstall_call_the_right_verbs(with_manager: Person) -> None:
    person = with_manager
    person.airlock("service", "install")
    person.calls()

    stopped = person.airlock("service", "stop")
    assert "stopped airlock.service" in stopped.stdout
    assert changes(person.calls()) == [["--user", "stop", "airlock.service"]]
    assert person.status()["running"] is False
    person.calls()

    started = person.airlock("service", "start")
    assert "started airlock.service (systemd --user)" in started.stdout
    assert changes(person.calls()) == [["--user", "start", "airlock.service"]]
    assert person.status()["state"] == "active"
    person.calls()

    gone = person.airlock("service", "uninstall")
    assert f"removed {person.unit}" in gone.stdout
    assert not person.unit.exists()
    assert changes(person.calls()) == [
        ["--user", "disable", "--now", "airlock.service"],
        ["--user", "daemon-reload"],
    ]


def test_without_a_user_manager_install_enables_nothing_and_says_how_to_run_it(
    tmp_path: Path,
) -> None:
    person = Person(tmp_path, manager=False)
    done = person.airlock("service", "install")
    assert person.unit.exists()
    assert "no systemd user manager here, so nothing was enabled" in done.stdout
    assert "airlock service start" in done.stdout
    assert "airlock serve" in done.stdout
    calls = person.calls()
    assert calls == [["--user", "is-system-running"]]  # asked, and nothing else
    assert person.status()["manager"] == "airlock service (no user manager)"
