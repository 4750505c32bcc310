"""The airlock command as a person runs it: a real subprocess in a temporary AIRLOCK_HOME."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def airlock(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "AIRLOCK_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "airlock", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    from airlock import __version__

    result = airlock(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"airlock {__version__}"


def test_init_writes_a_commented_config_and_private_directories(tmp_path: Path) -> None:
    result = airlock(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    config = tmp_path / "config.yaml"
    assert config.read_text().startswith("# Airlock configuration")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    for directory in (tmp_path / "data", tmp_path / "data" / "audit", tmp_path / "run"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert "same" not in result.stderr
    assert "Personal mode" in result.stdout


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("services: {}\n# mine\n")
    result = airlock(tmp_path, "init")
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert "--force" in result.stderr
    assert (tmp_path / "config.yaml").read_text() == "services: {}\n# mine\n"
    assert airlock(tmp_path, "init", "--force").returncode == 0
    assert "# mine" not in (tmp_path / "config.yaml").read_text()


def test_the_written_config_loads(tmp_path: Path) -> None:
    airlock(tmp_path, "init")
    result = airlock(tmp_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["config_exists"] is True
    assert facts["mode"] == "personal"
    assert facts["services"] == []
    assert any("Personal mode" in w for w in facts["warnings"])


def test_status_names_a_service_whose_connector_is_missing(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("services:\n  cal: {connector: gmail}\n")
    hidden = {"AIRLOCK_DISABLE_PLUGINS": "airlock-gmail"}  # as if only core were installed
    facts = json.loads(airlock(tmp_path, "status", "--json", env=hidden).stdout)
    assert facts["services"][0]["name"] == "cal"
    assert "pip install airlock-gmail" in facts["services"][0]["problem"]


@pytest.mark.parametrize("command", ["status", "services"])
def test_an_invalid_config_is_an_error_with_file_and_key(tmp_path: Path, command: str) -> None:
    (tmp_path / "config.yaml").write_text("approvals: {timeout: later}\n")
    result = airlock(tmp_path, command)
    assert result.returncode == 1
    assert "config.yaml: key approvals.timeout" in result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / "config.yaml").write_text("approvals: {timeout: 5m}\n")
    result = airlock(tmp_path, command, env={"AIRLOCK_TOTP__DIGITS": "9"})
    assert result.returncode == 1
    # The variable is what is wrong, and what to fix: it is named, not the file.
    assert "AIRLOCK_TOTP__DIGITS: key totp.digits" in result.stderr


def test_plugins_list_shows_builtins_with_all(tmp_path: Path) -> None:
    result = airlock(tmp_path, "plugins", "list", "--json", "--all")
    report = json.loads(result.stdout)
    console = next(e for e in report if e["name"] == "console")
    assert console["distribution"] == "airlock-core"
    assert console["components"] == {"notifiers": ["console"]}
    policies = next(e for e in report if e["name"] == "policies")
    assert policies["components"]["policies"] == [
        "scope",
        "read-only",
        "rate-limit",
        "redact-codes",
    ]


def test_an_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    assert airlock(tmp_path, "frobnicate").returncode == 2


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['airlock', '--help']\n"
        "from airlock.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'mcp', 'aiohttp', 'httpx', 'structlog', 'pydantic', 'cryptography',\n"
        "         'imapclient'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "AIRLOCK_HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("args", [["status"], ["plugins", "list"]])
def test_commands_work_without_a_config(tmp_path: Path, args: list[str]) -> None:
    result = airlock(tmp_path, *args)
    assert result.returncode == 0, result.stderr


SPY_PLUGIN = """
import os

class Spy:
    def new_schema_validator(self, schema, schema_type, *args, **kwargs):
        with open(os.environ["SPY_LOG"], "a") as log:
            log.write(getattr(schema_type, "__name__", "?") + "\\n")
        return None, None, None

plugin = Spy()
"""


def test_no_third_party_pydantic_plugin_sees_the_values_the_cli_validates(
    tmp_path: Path,
) -> None:
    """A pydantic plugin installed in the environment would observe every model and value
    validated (codes, credentials); the CLI and the daemon load none."""
    import subprocess
    import sys

    site = tmp_path / "site"
    (site / "spy-0.1.dist-info").mkdir(parents=True)
    (site / "spy-0.1.dist-info" / "METADATA").write_text("Name: spy\nVersion: 0.1\n")
    (site / "spy-0.1.dist-info" / "entry_points.txt").write_text("[pydantic]\nspy = spy:plugin\n")
    (site / "spy.py").write_text(SPY_PLUGIN)
    log = tmp_path / "spy.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "SPY_LOG": str(log),
        "AIRLOCK_HOME": str(tmp_path),
    }
    model = "from pydantic import BaseModel\nclass Seen(BaseModel):\n    x: int = 0\n"
    subprocess.run([sys.executable, "-c", model], env=env, check=True)
    assert "Seen" in log.read_text()  # the spy works where nobody turns it off
    log.unlink()
    airlock = [sys.executable, "-m", "airlock"]
    subprocess.run(
        [*airlock, "plugins", "list", "--json"], env=env, capture_output=True, check=True
    )
    subprocess.run([*airlock, "status"], env=env, capture_output=True, check=False)
    assert not log.exists()


def test_a_builtin_command_is_run_from_an_app_holding_only_its_module() -> None:
    """``airlock status`` builds only status's commands; the table saying which module
    adds which command is what the modules add, so every command still runs."""
    from typer.main import get_command

    from airlock.cli import BUILTIN_COMMANDS, MODULES, build_app
    from airlock.framework.plugins import get_plugin_manager

    pm = get_plugin_manager(load_entry_points=False, env={})
    full = get_command(build_app(pm))
    assert set(full.commands) == set(BUILTIN_COMMANDS)  # type: ignore[attr-defined]
    for module in MODULES:
        names = {name for name, home in BUILTIN_COMMANDS.items() if home == module}
        for name in names:
            alone = get_command(build_app(pm, command=name))
            assert set(alone.commands) == names  # type: ignore[attr-defined]
    everything = get_command(build_app(pm, command="no-such-command"))
    assert set(everything.commands) == set(BUILTIN_COMMANDS)  # type: ignore[attr-defined]


def test_pending_shows_the_call_a_write_would_approve_and_a_spend_its_amount() -> None:
    """The person reading `airlock pending` before `airlock approve` sees which call, or
    how much money, the code would give away (it showed only 'write')."""
    from datetime import UTC, datetime

    from airlock.api import PendingRequest
    from airlock.cli.access import _access_text

    now = datetime.now(UTC)
    base = {"id": "req_1", "code": "AB12", "fingerprint": "0000-0000", "reason": "r", "ttl": 60}
    base |= {"requester_uid": 1000, "created_at": now, "expires_at": now}
    write = PendingRequest(
        **base,
        services=["mail"],
        access="write",
        operation={"service": "mail", "name": "move\x1b[2J", "params": {"id": "1"}},
    )
    assert _access_text(write) == "write mail.move [2J"  # no escape reaches the terminal
    spend = PendingRequest(**base, services=["llm"], access="spend", budget_usd=0.05)
    assert _access_text(spend) == "spend up to $0.05"
    read = PendingRequest(**base, services=["mail"], access="read", status="approved")
    assert _access_text(read) == "read (approved, not collected)"
