"""Commands that need no daemon load no heavy library: a plugin declares its components by
reference (``"ID = module:Class"``), so listing them imports no component module, and a
component imports its client library (httpx, imapclient, Google's, the MCP SDK) only
when it first works; typer converts a parameter through pydantic only when its value
needs converting, pydantic looks for no plugins (``importlib.metadata``), and the
config is read without pydantic-settings; a config that plainly is valid is checked
without building its models (pydantic), the one `airlock init` writes is known without
parsing YAML, and with a daemon running that loaded it, `status` describes its services
without importing their connectors; with no daemon, neither does `status` nor `services`
when nothing changed since they last checked.
benchmarks/cli_startup.py measures the time; this keeps each cause from coming back
unnoticed: re-adding one of these imports to a path these commands take fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Never imported by a command that needs no daemon.
HEAVY = (
    "imapclient",
    "gcsa",
    "googleapiclient",
    "google.auth",
    "structlog",
    "mcp",
    "aiohttp",
    "httpx",
    "rich",
    "pygments",
    "importlib.metadata",
    "airlock.client",
    "airlock.api",
    "airlock.gateway.services",
    "asyncio",
    "pydantic_settings",
    # each first-party component module: registering its plugin must not import it
    "airlock_mail.maildir",
    "airlock_mail.imap",
    "airlock_gmail.connector",
    "airlock_icloud.connector",
    "airlock_gcal.connector",
    "airlock_openrouter.connector",
    "airlock_mcp_proxy.connector",
    "airlock_notify_telegram._notifier",
    "airlock_notify_signal._notifier",
    "airlock.default_plugins._console_notifier",
)
# Nor by status and services with the config `airlock init` writes (plainly valid, no
# service, known without parsing): pydantic, the config's models, YAML.
PLAIN_CONFIG_HEAVY = (
    *HEAVY,
    "pydantic",
    "pydantic_core",
    "yaml",
    "airlock.settings.config",
    "airlock.default_plugins._policies",
)
# Nor, then, by the commands that read no config.
NO_CONFIG_HEAVY = PLAIN_CONFIG_HEAVY
# status and services with a Maildir or an IMAP service and no daemon: its connector
# (with pydantic) describes it, and nothing else; the config's models are not built, and
# what only working needs (asyncio, imaplib, ssl, the MIME parser) is not imported.
A_SERVICE_HEAVY = (
    *(m for m in HEAVY if m not in ("airlock_mail.maildir", "airlock.gateway.services")),
    "airlock.settings.config",
    "airlock_mail.mime",
    "email",
    "ssl",
    "imaplib",
)
AN_IMAP_SERVICE_HEAVY = tuple(m for m in A_SERVICE_HEAVY if m != "airlock_mail.imap")
PROBE = """
import runpy, sys
sys.argv = ["airlock", *sys.argv[1:]]
try:
    runpy.run_module("airlock", run_name="__main__")
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def imported_heavy(home: Path, argv: list[str], heavy: tuple[str, ...]) -> str:
    env = {**os.environ, "AIRLOCK_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return next(x for x in done.stderr.splitlines() if x.startswith("HEAVY="))[6:]


@pytest.mark.parametrize(
    ("argv", "heavy"),
    [
        pytest.param(argv, heavy, id=" ".join(argv))
        for argv, heavy in [
            (["--help"], NO_CONFIG_HEAVY),
            (["plugins", "list", "--json", "--all"], NO_CONFIG_HEAVY),
            (["plugins", "list"], NO_CONFIG_HEAVY),
            (["init"], NO_CONFIG_HEAVY),
            (["audit", "verify"], NO_CONFIG_HEAVY),
            (["status"], PLAIN_CONFIG_HEAVY),
            (["services"], PLAIN_CONFIG_HEAVY),
        ]
    ],
)
def test_offline_commands_import_no_heavy_library(
    tmp_path: Path, argv: list[str], heavy: tuple[str, ...]
) -> None:
    if argv[0] in ("status", "services", "audit"):  # with the config `airlock init` writes
        assert imported_heavy(tmp_path, ["init"], ()) == ""
    assert imported_heavy(tmp_path, argv, heavy) == "", f"`airlock {' '.join(argv)}` imported it"


def with_a_maildir_service(home: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (home / "Mail" / sub).mkdir(parents=True)
    (home / "config.yaml").write_text(
        f"services:\n  archive: {{connector: maildir, path: {home / 'Mail'}}}\n"
    )


@pytest.mark.parametrize("command", ["status", "services"])
def test_a_configured_service_imports_its_connector_only(tmp_path: Path, command: str) -> None:
    with_a_maildir_service(tmp_path)
    assert imported_heavy(tmp_path, [command], A_SERVICE_HEAVY) == ""


@pytest.mark.parametrize("command", ["status", "services"])
def test_an_imap_service_imports_no_imap_runtime(tmp_path: Path, command: str) -> None:
    (tmp_path / "config.yaml").write_text(
        "services:\n  work: {connector: imap, host: imap.example.com, username: me}\n"
    )
    assert imported_heavy(tmp_path, [command], AN_IMAP_SERVICE_HEAVY) == ""


@pytest.mark.parametrize("command", ["status", "services"])
def test_a_service_checked_before_imports_neither_pydantic_nor_yaml(
    tmp_path: Path, command: str
) -> None:
    """Nothing changed since the last full check (airlock.cli.checked): what it found is
    said again without the connector, pydantic, the config's models or YAML."""
    with_a_maildir_service(tmp_path)
    imported_heavy(tmp_path, [command], ())
    assert imported_heavy(tmp_path, [command], PLAIN_CONFIG_HEAVY) == ""


def test_the_probe_sees_a_heavy_import(tmp_path: Path) -> None:
    """The check can fail: `airlock services` with a configured Maildir service imports
    that connector (and pydantic), and the probe says so."""
    (tmp_path / "config.yaml").write_text(
        f"services:\n  archive: {{connector: maildir, path: {tmp_path / 'Mail'}}}\n"
    )
    found = imported_heavy(tmp_path, ["services"], ("airlock_mail.maildir", "pydantic"))
    assert found == "airlock_mail.maildir,pydantic"


def test_status_with_a_daemon_running_loads_no_client(tmp_path: Path) -> None:
    """One blocking GET asks the daemon: no event loop, aiohttp, the client's models or
    the config's."""
    from airlock.clients.local_daemon import LocalDaemon

    client = (*HEAVY, "airlock.clients._http")
    assert imported_heavy(tmp_path, ["init"], ()) == ""
    with LocalDaemon(tmp_path):
        assert imported_heavy(tmp_path, ["status"], (*client, *PLAIN_CONFIG_HEAVY)) == ""
        assert imported_heavy(tmp_path, ["audit", "verify"], client) == ""


def test_status_with_a_daemon_that_loaded_the_service_imports_no_connector(
    tmp_path: Path,
) -> None:
    """The daemon checked the service's settings when it loaded this very file: status
    says so without its connector, pydantic or the config's models (YAML reads the file)."""
    from airlock.clients.local_daemon import LocalDaemon

    with_a_maildir_service(tmp_path)
    heavy = tuple(m for m in (*PLAIN_CONFIG_HEAVY, "airlock.clients._http") if m != "yaml")
    with LocalDaemon(tmp_path):
        assert imported_heavy(tmp_path, ["status"], heavy) == ""
