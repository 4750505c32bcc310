"""`airlock status` and `airlock services` keep what checking the services found
(airlock.cli.checked): the next run with nothing changed says the same without importing
pydantic, and anything it depends on changed, or a kept file that is not right, means the
full check and the right answer. Real subprocesses in a temporary AIRLOCK_HOME, with a
connector really installed (a dist-info with an entry point on sys.path), beside
airlock-mail's Maildir connector (so these run with the mail package's tests)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.test_plugins import make_distribution

# Reports whether the command imported pydantic (that is: checked with the connectors).
PROBE = """
import runpy, sys
sys.argv = ["airlock", *sys.argv[1:]]
try:
    runpy.run_module("airlock", run_name="__main__")
except SystemExit:
    pass
print("PYDANTIC=" + str("pydantic" in sys.modules), file=sys.stderr)
"""

GAUGE_PLUGIN = """
from airlock.plugin import hookimpl

@hookimpl
def register_connectors():
    return ["gauge = gauge_connector:GaugeConnector"]
"""

GAUGE_CONNECTOR = """
from pydantic import BaseModel, ConfigDict, Field
from airlock.framework.connectors import Connector

class GaugeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(le=10)

class GaugeConnector(Connector[GaugeSettings]):
    name = "gauge"
    title = "Gauge"
    Settings = GaugeSettings
"""


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = root / "site"
        self.site.mkdir()
        make_distribution(self.site, "airlock-gauge", "gauge_plugin", GAUGE_PLUGIN)
        (self.site / "gauge_connector.py").write_text(GAUGE_CONNECTOR)
        self.mail = root / "Mail"
        for sub in ("cur", "new", "tmp"):
            (self.mail / sub).mkdir(parents=True)
        self.configure(limit=5, path=self.mail)

    @property
    def kept(self) -> Path:
        return self.root / "cache" / f"services-checked-{os.geteuid()}.json"

    def configure(self, *, limit: int, path: Path) -> None:
        (self.root / "config.yaml").write_text(
            "services:\n"
            f"  archive: {{connector: maildir, path: {path}}}\n"
            f"  meter: {{connector: gauge, limit: {limit}}}\n"
        )

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], bool]:
        """The command's outcome, and whether it imported pydantic."""
        done = subprocess.run(
            [sys.executable, "-c", PROBE, *args],
            env={
                **os.environ,
                "AIRLOCK_HOME": str(self.root),
                "PYTHONPATH": os.pathsep.join([str(self.site), *sys.path]),
                **(env or {}),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done, "PYDANTIC=True" in done.stderr

    def problems(self) -> tuple[dict[str, str], bool]:
        """Each service's problem ("" if none) as `airlock status --json` says, and
        whether the connectors checked."""
        done, checked = self.run("status", "--json")
        facts = json.loads(done.stdout)
        return {s["name"]: s.get("problem", "") for s in facts["services"]}, checked


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def test_a_second_run_says_the_same_without_the_connectors(home: Home) -> None:
    first, checked = home.run("status", "--json")
    assert checked
    assert stat.S_IMODE(home.kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.kept.parent.stat().st_mode) == 0o700
    second, checked = home.run("status", "--json")
    assert not checked
    assert second.stdout == first.stdout
    assert [s["name"] for s in json.loads(second.stdout)["services"]] == ["archive", "meter"]

    listing, checked = home.run("services", "--json")
    assert checked  # status kept no operations: services checks once, and keeps them
    again, checked = home.run("services", "--json")
    assert not checked
    assert again.stdout == listing.stdout
    assert [s["title"] for s in json.loads(again.stdout)] == ["Local Maildir", "Gauge"]
    text, checked = home.run("services")
    assert not checked
    assert "list_messages" in text.stdout
    assert home.problems() == ({"archive": "", "meter": ""}, False)


def test_an_edited_config_is_checked_again(home: Home) -> None:
    assert home.problems() == ({"archive": "", "meter": ""}, True)
    home.configure(limit=50, path=home.mail)
    problems, checked = home.problems()
    assert checked
    assert "limit" in problems["meter"]
    assert problems["archive"] == ""


def test_a_maildir_that_lost_its_cur_folder_is_checked_again(home: Home) -> None:
    assert home.problems() == ({"archive": "", "meter": ""}, True)
    (home.mail / "cur").rmdir()
    problems, checked = home.problems()
    assert checked
    assert "is not a Maildir" in problems["archive"]


def test_a_connector_whose_code_changed_is_checked_again(home: Home) -> None:
    """As an editable install changes: the same distribution and version, other code."""
    assert home.problems() == ({"archive": "", "meter": ""}, True)
    module = home.site / "gauge_connector.py"
    module.write_text(GAUGE_CONNECTOR.replace("le=10", "le= 4"))  # the same size
    later = module.stat().st_mtime_ns + 5_000_000_000
    os.utime(module, ns=(later, later))
    problems, checked = home.problems()
    assert checked
    assert "limit" in problems["meter"]


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not json", b"[1, 2]", b'{"key": null}', b"[" * 100_000, json.dumps({"x": 1}).encode()],
)
def test_a_kept_file_that_is_not_one_means_the_full_check(home: Home, garbage: bytes) -> None:
    home.run("status")
    home.kept.write_bytes(garbage)
    home.configure(limit=50, path=home.mail)
    problems, checked = home.problems()
    assert checked
    assert "limit" in problems["meter"]


def test_a_kept_file_with_a_terminal_escape_is_not_shown(home: Home) -> None:
    home.run("status")
    data = json.loads(home.kept.read_text())
    data["services"][1]["problem"] = "\x1b]0;pwned\x07\x1b[2J"
    home.kept.write_text(json.dumps(data))
    done, checked = home.run("status")
    assert checked
    assert "\x1b" not in done.stdout
    assert "meter        gauge\n" in done.stdout


def test_a_kept_file_others_may_write_is_not_used(home: Home) -> None:
    home.run("status")
    home.kept.chmod(0o622)
    assert home.problems() == ({"archive": "", "meter": ""}, True)


def test_a_variable_setting_a_key_means_the_full_check(home: Home) -> None:
    home.run("status")
    assert home.run("status", env={"AIRLOCK_SESSIONS__DEFAULT_TTL": "30m"})[1]


def test_a_cache_that_cannot_be_written_changes_nothing(home: Home) -> None:
    (home.root / "cache").write_text("a file where the directory would be")
    first, checked = home.run("status", "--json")
    second, checked_again = home.run("status", "--json")
    assert checked
    assert checked_again
    assert first.stdout == second.stdout
