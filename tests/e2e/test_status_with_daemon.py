"""``airlock status`` with a daemon running that loaded this very config describes its
services from the daemon's answer (``airlock.cli.status.checked_by_daemon``) instead of
importing their connectors to check them again: what it shows is what checking them
here shows, and a config edited since is checked here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from airlock.clients.local_daemon import LocalDaemon
from airlock.settings.config_file import CONFIG_CHANGED

# Sets a key (to its default): the config is then read by its models and every service
# checked by its connector, as without a daemon.
CHECKED_HERE = {"AIRLOCK_TOTP__ISSUER": "Airlock"}


def status(home: Path, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """What ``airlock status --json`` and ``airlock status`` print."""
    full_env = {**os.environ, "AIRLOCK_HOME": str(home), **(env or {})}
    shown = []
    for argv in (["status", "--json"], ["status"]):
        done = subprocess.run(
            [sys.executable, "-m", "airlock", *argv],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        shown.append(done.stdout)
    facts = json.loads(shown[0])
    facts["daemon"].pop("audit_seq")  # the daemon may have written a record since
    return facts, shown[1]


def maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    return path


def test_the_daemons_answer_says_what_checking_here_says(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "services:\n"
        f"  archive: {{connector: maildir, path: {maildir(tmp_path / 'Archive')}}}\n"
        f"  inbox:\n    connector: maildir\n    path: {maildir(tmp_path / 'Inbox')}\n"
        "permissions: {rate_limit: 30, inbox: {write: deny}}\n"
    )
    with LocalDaemon(tmp_path):
        told, told_text = status(tmp_path)
        checked, checked_text = status(tmp_path, CHECKED_HERE)
    assert told == checked
    assert told_text == checked_text
    assert told["services"] == [
        {"name": "archive", "connector": "maildir", "loaded": True},
        {"name": "inbox", "connector": "maildir", "loaded": True},
    ]


def test_a_config_edited_since_the_daemon_loaded_it_is_checked_here(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"services:\n  archive: {{connector: maildir, path: {maildir(tmp_path / 'Mail')}}}\n"
    )
    with LocalDaemon(tmp_path):
        with config.open("a") as more:
            more.write(f"  notes: {{connector: maildir, path: {tmp_path / 'Notes'}}}\n")
        told, told_text = status(tmp_path)
        checked, checked_text = status(tmp_path, CHECKED_HERE)
    assert told == checked
    assert told_text == checked_text
    archive, notes = told["services"]
    assert archive == {"name": "archive", "connector": "maildir", "loaded": True}
    assert notes["loaded"] is False
    assert "is not a Maildir" in notes["problem"]
    assert CONFIG_CHANGED in told["warnings"]
