"""``airlock service`` in personal mode where no systemd user manager runs (as here and in
containers): the unit is written, and start/stop/status supervise a detached daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from daemon_harness import TotpPhone, remember, run_airlock

from airlock.demo.sample_mail import write_sample_maildir


class Person:
    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "XDG_"))}
        self.env.update(AIRLOCK_HOME=str(self.home), XDG_CONFIG_HOME=str(root / "xdg"))
        self.home.mkdir()
        mail = write_sample_maildir(self.home / "Maildir")
        (self.home / "config.yaml").write_text(
            f"services:\n  mail: {{connector: maildir, path: {json.dumps(str(mail))}}}\n"
        )
        self.unit = root / "xdg" / "systemd" / "user" / "airlock.service"
        self.pid_file = self.home / "run" / "airlock.pid"

    def airlock(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_airlock(self.env, *args, stdin=stdin)

    def enrol(self, *args: str, current: str = "", last_step: int = -(10**9)) -> TotpPhone:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlock", "totp", *args],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdin is not None
        if current:  # a reset proves the current secret first (stdin's first line)
            proc.stdin.write(current + "\n")
            proc.stdin.flush()
        phone = TotpPhone(remember(pyotp.parse_uri(proc.stdout.readline()).secret), last_step)
        out, err = proc.communicate(phone.code() + "\n", timeout=60)
        assert proc.returncode == 0, out + err
        return phone

    def status(self) -> dict[str, object]:
        done = self.airlock("service", "status", "--json")
        assert done.returncode == 0, done.stderr
        facts: dict[str, object] = json.loads(done.stdout)
        return facts


@pytest.fixture
def person(tmp_path: Path) -> Iterator[Person]:
    someone = Person(tmp_path)
    yield someone
    someone.airlock("service", "stop")


def test_install_writes_the_user_unit_and_says_how_to_run_the_daemon(person: Person) -> None:
    done = person.airlock("service", "install")
    assert done.returncode == 0, done.stderr
    assert person.unit.exists()
    assert f"ExecStart={sys.executable} -m airlock serve" in person.unit.read_text()
    assert "airlock service start" in done.stdout
    again = person.airlock("service", "install")
    assert f"kept {person.unit}" in again.stdout
    gone = person.airlock("service", "uninstall")
    assert gone.returncode == 0, gone.stderr
    assert not person.unit.exists()


def test_start_status_stop_supervise_a_detached_daemon(person: Person) -> None:
    assert person.status()["running"] is False
    started = person.airlock("service", "start")
    assert started.returncode == 0, started.stderr
    facts = person.status()
    assert facts["running"] is True
    assert facts["answers"] is True
    pid = int(person.pid_file.read_text())
    assert "already running" in person.airlock("service", "start").stdout
    assert person.airlock("status", "--json").returncode == 0
    stopped = person.airlock("service", "stop")
    assert f"stopped the daemon (pid {pid})" in stopped.stdout
    assert not Path(f"/proc/{pid}").exists() or person.status()["running"] is False
    assert not person.pid_file.exists()


def test_a_stale_pid_file_naming_another_process_is_not_signalled(person: Person) -> None:
    person.pid_file.parent.mkdir(parents=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        person.pid_file.write_text(f"{bystander.pid}\n")
        assert person.status()["running"] is False
        assert "was not running" in person.airlock("service", "stop").stdout
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_secret_reset_while_the_daemon_runs_is_used_for_the_next_approval(
    person: Person,
) -> None:
    phone = person.enrol("setup")
    assert person.airlock("service", "start").returncode == 0
    new_phone = person.enrol("reset", current=phone.code(), last_step=phone.last_step)
    asked = person.airlock("request", "mail", "--reason", "inbox", "--wait", "0")
    code = json.loads(person.airlock("pending", "--json").stdout)[0]["code"]
    assert asked.returncode != 0
    approved = person.airlock("approve", code, stdin=new_phone.code() + "\n")
    assert approved.returncode == 0, approved.stderr
