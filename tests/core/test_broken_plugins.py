"""A broken third-party plugin, really installed (a dist-info with an entry point on
sys.path), is reported by `airlock plugins list` against its distribution while every
other command, `--help` included, keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.core.test_plugins import make_distribution

MISSPELLED = """
from airlock.plugin import hookimpl

@hookimpl
def register_connector():
    return []
"""

RAISING = """
from airlock.plugin import hookimpl

@hookimpl
def register_connectors():
    raise RuntimeError("weather API key missing")

@hookimpl
def register_commands(app):
    raise RuntimeError("no commands today")
"""

WRONG_ARGUMENTS = """
from airlock.plugin import hookimpl

@hookimpl
def register_commands(app, colour):
    pass
"""


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "airlock-typo", "airlock_typo", MISSPELLED)
    make_distribution(site, "airlock-raises", "airlock_raises", RAISING)
    make_distribution(site, "airlock-wrongargs", "airlock_wrongargs", WRONG_ARGUMENTS)
    return site


def airlock(site: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRLOCK_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(site), *sys.path]),
    }
    return subprocess.run(
        [sys.executable, "-m", "airlock", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_command_still_works(broken_site: Path, tmp_path: Path) -> None:
    for args in (("--help",), ("status", "--json"), ("services", "--json"), ("init",)):
        result = airlock(broken_site, tmp_path / "home", *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_plugins_list_reports_each_broken_plugin_against_its_distribution(
    broken_site: Path, tmp_path: Path
) -> None:
    result = airlock(broken_site, tmp_path, "plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    errors: dict[str, list[str]] = {}
    for entry in json.loads(result.stdout):
        if "error" in entry:
            errors.setdefault(entry["distribution"], []).append(entry["error"])
    assert errors["airlock-typo"] == [
        "unknown hook 'register_connector' (did you mean 'register_connectors'?); "
        "Airlock's hooks are register_commands, register_connectors, register_notifiers, "
        "register_policies"
    ]
    assert sorted(errors["airlock-raises"]) == [
        "register_commands raised RuntimeError: no commands today",
        "register_connectors raised RuntimeError: weather API key missing",
    ]
    (wrong,) = errors["airlock-wrongargs"]
    assert wrong.startswith("PluginValidationError")
    assert "colour" in wrong
    table = airlock(broken_site, tmp_path, "plugins", "list")
    assert table.returncode == 0, table.stderr
    assert "airlock-typo" in table.stdout
    assert "FAILED" in table.stdout
