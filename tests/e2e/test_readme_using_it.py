"""README "Using it", step by step as written, on a fresh home: the person's own HOME
with nothing in it, the default paths, the real `airlock` command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from airlock.demo.phone import SimulatedPhone
from airlock.demo.sample_mail import write_sample_maildir

ROOT = Path(__file__).resolve().parents[2]


def readme_steps() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]


class Person:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRLOCK_", "XDG_"))
        }
        # A fresh user's session: their HOME and runtime directory, and personal mode
        # even on a machine where another test left an isolated install in /etc.
        self.env.update(HOME=str(home), XDG_RUNTIME_DIR=str(home / "run"), AIRLOCK_MODE="personal")
        (home / "run").mkdir(mode=0o700, parents=True)

    def command(self, line: str) -> list[str]:
        """A README line as argv, `airlock` being this installation's."""
        words = re.findall(r"'[^']*'|\S+", line)
        assert words[0] == "airlock", line
        args = [w[1:-1] if w.startswith("'") else w for w in words[1:]]
        return [sys.executable, "-m", "airlock", *args]

    def run(self, line: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(line),
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    def start(self, line: str, *, stdin: bool = False) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(line),
            env=self.env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def person(tmp_path: Path) -> Person:
    return Person(tmp_path / "alice")


def step(steps: list[str], prefix: str) -> str:
    found = [s for s in steps if s.startswith(prefix)]
    assert found, f"README 'Using it' has no step starting {prefix!r}"
    return found[0]


def test_readme_using_it_works_as_written_on_a_fresh_home(person: Person) -> None:
    steps = readme_steps()
    assert step(steps, "pip install airlock-core")

    init = person.run(step(steps, "airlock init"))
    assert init.returncode == 0, init.stderr
    config = person.home / ".config" / "airlock" / "config.yaml"
    assert config.is_file(), "the README says ~/.config/airlock/config.yaml"

    setup = person.start(step(steps, "airlock totp setup"), stdin=True)
    assert setup.stdout is not None
    uri = setup.stdout.readline().strip()
    phone = SimulatedPhone(parse_qs(urlparse(uri).query)["secret"][0])
    out, err = setup.communicate(phone.code() + "\n", timeout=60)
    assert setup.returncode == 0, err

    # "$EDITOR ~/.config/airlock/config.yaml": switch on the archive example.
    assert any(s.startswith("$EDITOR ~/.config/airlock/config.yaml") for s in steps)
    write_sample_maildir(person.home / "Mail" / "archive")
    text = config.read_text()
    assert "  # archive: {connector: maildir, path: ~/Mail/archive}" in text
    config.write_text(text.replace("  # archive:", "  archive:", 1))

    daemon = person.start(step(steps, "airlock serve"))
    try:
        deadline = time.monotonic() + 30
        while True:
            status = person.run("airlock status --json")
            if status.returncode == 0 and json.loads(status.stdout)["daemon"]["running"]:
                break
            assert time.monotonic() < deadline, status.stderr
            time.sleep(0.2)

        added = person.run(step(steps, "airlock credentials add").replace("work", "archive"))
        assert added.returncode == 0, added.stderr
        assert "archive takes no credentials" in added.stdout

        agent = person.start(step(steps, "airlock run archive list_messages"))
        code = ""
        deadline = time.monotonic() + 30
        while not code:
            listed = json.loads(person.run("airlock pending --json").stdout)
            code = listed[0]["code"] if listed else ""
            assert time.monotonic() < deadline, "no request appeared"
            time.sleep(0.1)
        approve = step(steps, "airlock approve").replace("K7QD", code)
        approved = person.run(approve, stdin=phone.code() + "\n")
        assert approved.returncode == 0, approved.stderr
        out, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err
        messages = json.loads(out)["messages"]
        assert 1 <= len(messages) <= 5
    finally:
        daemon.terminate()
        daemon.communicate(timeout=30)
