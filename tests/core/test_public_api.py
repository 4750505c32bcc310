"""One public face for plugin authors: ``airlock.plugin``, pinned, light, and the only way in.

Every package in the workspace other than core (``airlock-*/src/*``, including packages
added later) is scanned: it may import core only through ``airlock.plugin``, and another
plugin package only through that package's public modules (no ``_private`` part).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import airlock.plugin

ROOT = Path(__file__).resolve().parents[2]
CORE = "airlock"
PUBLIC_CORE = {"airlock.plugin"}

PUBLIC_NAMES = [
    "REASON_LIMIT",
    "UNTRUSTED",
    "Access",
    "AccessDenied",
    "AirlockError",
    "AnswerTooLarge",
    "ApiSettings",
    "ApiUnreachable",
    "ApprovalTimedOut",
    "Backoff",
    "BudgetState",
    "Charge",
    "CheckResult",
    "CliState",
    "Clock",
    "ConfigError",
    "Connector",
    "ConnectorAuthError",
    "ConnectorError",
    "Decision",
    "Delivery",
    "Done",
    "Forbidden",
    "HttpApi",
    "HttpNotifier",
    "InvalidInput",
    "LineTooLong",
    "Meter",
    "NoCredentials",
    "NoSettings",
    "NotEnrolled",
    "NotFound",
    "Notice",
    "Notifier",
    "NotifierError",
    "OpenAIChatFields",
    "OpenAIChatMessage",
    "OpenAIEmbeddingsFields",
    "OperationSpec",
    "Params",
    "PipeLines",
    "Policy",
    "PolicyContext",
    "PricedConnector",
    "Problem",
    "Prompt",
    "Quote",
    "RateLimited",
    "Reply",
    "ResultFilter",
    "ServiceAnswerLost",
    "ServiceOutOfCredit",
    "ServicePermissions",
    "ServiceRateLimited",
    "ServiceRefused",
    "SessionFacts",
    "Sleep",
    "SocketNotPrivate",
    "SpendSettings",
    "Stage",
    "StreamItem",
    "SystemClock",
    "ToolAlias",
    "UntrustedText",
    "Verdict",
    "api_base_setting",
    "configured_api_base",
    "confined_command",
    "current_budget",
    "first_problem",
    "flatten_prompt",
    "get_logger",
    "hookimpl",
    "listed_operation",
    "open_private_socket",
    "operation",
    "parse_json",
    "problem_fields",
    "read_totp",
    "refuse_ptrace",
    "report_settings",
    "store_secret",
    "untrusted_line",
    "with_client",
    "withhold",
]


def test_the_public_names_are_pinned() -> None:
    """Adding or removing a public name is a decision: change this list with it."""
    assert airlock.plugin.__all__ == PUBLIC_NAMES
    assert sorted(dir(airlock.plugin)) == sorted(PUBLIC_NAMES)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_is_the_object_core_uses(name: str) -> None:
    home = airlock.plugin._HOME_OF[name]
    assert getattr(airlock.plugin, name) is getattr(importlib.import_module(home), name)


def test_the_type_checker_sees_the_same_names_as_the_runtime() -> None:
    """The TYPE_CHECKING imports (what mypy reads) and the lazy table (what runs) agree."""
    tree = ast.parse(Path(airlock.plugin.__file__).read_text(encoding="utf-8"))
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    imported = {
        node.module: tuple(alias.name for alias in node.names)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported == airlock.plugin._HOMES


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Conector"):
        _ = airlock.plugin.Conector  # type: ignore[attr-defined]


def test_importing_hookimpl_loads_nothing_heavy() -> None:
    """Plugin modules import ``hookimpl`` at the top; that runs for ``airlock --help``."""
    probe = (
        "import sys\n"
        "from airlock.plugin import hookimpl\n"
        "heavy = {'pydantic', 'httpx', 'aiohttp', 'typer', 'cryptography', 'yaml'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def plugin_sources() -> list[Path]:
    """Every Python file of every workspace package except core, found from the tree."""
    return sorted(
        path
        for package in ROOT.glob("airlock-*/src/*")
        if package.is_dir() and package.name != CORE
        for path in package.rglob("*.py")
    )


def workspace_modules() -> set[str]:
    return {package.name for package in ROOT.glob("airlock-*/src/*") if package.is_dir()}


def imports_of(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import in *source*, including those inside functions."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return sorted(found)


def forbidden_imports(source: str, own: str, workspace: set[str]) -> list[tuple[int, str]]:
    """(line, why) of each import that reaches past a package's public face."""
    problems = []
    for line, module in imports_of(source):
        top = module.split(".")[0]
        if top == CORE and module not in PUBLIC_CORE:
            problems.append((line, f"{module} (use airlock.plugin)"))
        elif top in workspace - {own, CORE} and any(p.startswith("_") for p in module.split(".")):
            problems.append((line, f"{module} (private to {top})"))
    return problems


def test_the_scan_finds_every_first_party_plugin() -> None:
    packages = {path.relative_to(ROOT).parts[2] for path in plugin_sources()}
    assert {
        "airlock_mail",
        "airlock_gmail",
        "airlock_icloud",
        "airlock_openrouter",
        "airlock_notify_telegram",
        "airlock_notify_signal",
    } <= packages


def test_plugins_import_core_only_through_airlock_plugin() -> None:
    workspace = workspace_modules()
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {why}"
        for path in plugin_sources()
        for line, why in forbidden_imports(
            path.read_text(encoding="utf-8"), path.relative_to(ROOT).parts[2], workspace
        )
    ]
    assert problems == []


def test_the_scan_catches_core_internals_and_another_packages_privates() -> None:
    source = (
        "from airlock.plugin import hookimpl\n"
        "from airlock_example._own import fine\n"
        "def f():\n"
        "    from airlock.framework.connectors import Connector\n"
        "    import airlock_mail._imap_search\n"
        "    from airlock_mail.imap import ImapConnector\n"
    )
    workspace = {"airlock", "airlock_example", "airlock_mail"}
    assert forbidden_imports(source, "airlock_example", workspace) == [
        (4, "airlock.framework.connectors (use airlock.plugin)"),
        (5, "airlock_mail._imap_search (private to airlock_mail)"),
    ]


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_is_documented(name: str) -> None:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert f"`{name}" in text, f"docs/plugins.md should name `{name}` in its public API table"
