"""Docs that match the code: every hook has a section with its exact signature."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pluggy
import pytest

from airlock.framework import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"


def hook_names() -> list[str]:
    marker = f"{hookspecs.PROJECT}_spec"
    return sorted(
        name
        for name, func in vars(hookspecs).items()
        if callable(func) and hasattr(func, marker) and not isinstance(func, pluggy.HookspecMarker)
    )


def test_the_hook_list_is_what_design_promises() -> None:
    assert hook_names() == [
        "register_commands",
        "register_connectors",
        "register_notifiers",
        "register_policies",
    ]


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_has_a_section_with_its_exact_signature(name: str) -> None:
    signature = f"{name}{inspect.signature(getattr(hookspecs, name))}".replace("'", "")
    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    assert f"### `{signature}`" in text, f"docs/plugins.md needs a section '### `{signature}`'"


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_says_its_call_style(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "called" in doc
    assert "I/O" in doc or "import heavy" in doc


ROOT = DOCS.parent
CORE = ROOT / "airlock-core" / "src" / "airlock"


def test_architecture_names_every_folder_of_core() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    folders = sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").exists())
    missing = [name for name in folders if f"{name}/" not in text]
    assert missing == [], f"docs/architecture.md should describe {missing}"


def test_no_code_or_doc_cites_a_file_outside_the_repository() -> None:
    """DESIGN.md is not in the repository: point at docs/ pages instead."""
    sources = [*ROOT.glob("airlock-*/src/**/*.py"), *DOCS.glob("*.md")]
    citing = [
        str(path.relative_to(ROOT))
        for path in sources
        if path.name != "design-changes.md" and "DESIGN §" in path.read_text(encoding="utf-8")
    ]
    assert citing == []


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_has_a_test(name: str) -> None:
    """Like datasette's meta-test: a hook no test implements or calls is untested."""
    tests = ROOT / "tests"
    users = [
        path
        for path in tests.rglob("test_*.py")
        if path.name != "test_docs.py" and name in path.read_text(encoding="utf-8")
    ]
    assert users, f"no test under tests/ mentions the hook {name}"


def cli_commands() -> list[str]:
    """Every built-in command path (``audit verify``), from the app the CLI builds."""
    import typer

    from airlock.cli import build_app
    from airlock.framework.plugins import get_plugin_manager

    root = typer.main.get_command(build_app(get_plugin_manager(load_entry_points=False, env={})))

    def walk(command: Any, path: list[str]) -> list[str]:
        subs = getattr(command, "commands", None)
        if not subs:
            return [" ".join(path)]
        return [found for name, sub in subs.items() for found in walk(sub, [*path, name])]

    return sorted(walk(root, []))


def test_the_command_list_is_found() -> None:
    assert {"approve", "audit verify", "totp setup"} <= set(cli_commands())


@pytest.mark.parametrize("command", cli_commands())
def test_every_cli_command_is_in_the_cli_docs(command: str) -> None:
    """``airlock audit verify`` or an alternative form (``airlock service start|stop``)."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    *group, last = command.split(" ")
    head = re.escape(" ".join(["airlock", *group]))
    alternatives = rf"{head} \[?(?:[\w-]+\\?\|)*{re.escape(last)}\b"
    assert re.search(alternatives, text), f"docs/cli.md should show `airlock {command}`"


def config_keys() -> list[str]:
    """Every section of config.yaml and every key of the sections that are models."""
    from pydantic import BaseModel

    from airlock.settings.config import AirlockConfig

    keys = []
    for section, field in AirlockConfig.model_fields.items():
        keys.append(section)
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            keys += [f"{section}.{key}" for key in model.model_fields]
    return keys


@pytest.mark.parametrize("key", config_keys())
def test_every_config_key_is_in_the_configuration_docs(key: str) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert key.rsplit(".", 1)[-1] in text, f"docs/configuration.md should describe {key}"
