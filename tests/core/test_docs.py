"""Docs that match the code: every hook has a section with its exact signature."""

from __future__ import annotations

import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml

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
    citation = "DESIGN " + "§"  # written in two parts, so this file does not cite it
    sources = [
        *ROOT.glob("airlock-*/src/**/*.py"),
        *ROOT.glob("examples/*/src/**/*.py"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("benchmarks/*.py"),
        *DOCS.glob("*.md"),
        ROOT / "README.md",
    ]
    citing = [
        str(path.relative_to(ROOT))
        for path in sources
        if path.name != "design-changes.md" and citation in path.read_text(encoding="utf-8")
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
    """Every command path (``audit verify``), from the app the CLI builds: built-in ones,
    those of every installed plugin (``gcal auth`` where airlock-gcal is installed), and
    groups that run on their own (``audit``)."""
    import typer

    from airlock.cli import build_app
    from airlock.framework.plugins import get_plugin_manager

    root = typer.main.get_command(build_app(get_plugin_manager(env={})))

    def walk(command: Any, path: list[str]) -> list[str]:
        subs = getattr(command, "commands", None)
        if not subs:
            return [" ".join(path)]
        itself = [" ".join(path)] if path and command.invoke_without_command else []
        return itself + [found for name, sub in subs.items() for found in walk(sub, [*path, name])]

    return sorted(walk(root, []))


def test_the_command_list_is_found() -> None:
    assert {"approve", "audit", "audit verify", "totp setup", "service start"} <= set(
        cli_commands()
    )


def shown_in_cli_docs(command: str) -> bool:
    """``airlock audit verify`` or an alternative form (``airlock service start|stop``)."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    *group, last = command.split(" ")
    head = re.escape(" ".join(["airlock", *group]))
    alternatives = rf"{head} \[?(?:[\w-]+\\?\|)*{re.escape(last)}\b"
    return re.search(alternatives, text) is not None


@pytest.mark.parametrize("command", cli_commands())
def test_every_cli_command_is_in_the_cli_docs(command: str) -> None:
    assert shown_in_cli_docs(command), f"docs/cli.md should show `airlock {command}`"


def _models_in(annotation: Any) -> list[tuple[tuple[str, ...], type[Any]]]:
    """The config models *annotation* holds, each with the path to it: the model itself,
    a union's members, or the values of a ``dict[str, Model]`` (path ``*``)."""
    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [found for arg in typing.get_args(annotation) for found in _models_in(arg)]
    if origin is dict:
        return [(("*", *path), model) for path, model in _models_in(typing.get_args(annotation)[1])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [((), annotation)]
    return []


def config_paths(model: type[Any] | None = None, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every key of config.yaml, walked through the config models: sections, their keys,
    nested models, and the entries of per-name sections (``permissions.*.write``)."""
    from airlock.settings.config import AirlockConfig

    model = model or AirlockConfig
    paths: list[str] = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        paths.append(".".join(path))
        for suffix, inner in _models_in(field.annotation):
            paths += config_paths(inner, (*path, *suffix))
    extra = typing.get_type_hints(model).get("__pydantic_extra__")
    for suffix, inner in _models_in(extra):  # typed extra keys: one block a name
        paths += config_paths(inner, (*prefix, *suffix))
    return paths


def config_example() -> dict[str, Any]:
    """The first YAML block of docs/configuration.md: every section with its keys."""
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    found = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert found, "docs/configuration.md should open with a YAML example of every section"
    example = yaml.safe_load(found.group(1))
    assert isinstance(example, dict)
    return example


def _shows(example: Any, path: list[str]) -> bool:
    if not path:
        return True
    if not isinstance(example, dict):
        return False
    key, *rest = path
    if key == "*":
        return any(_shows(value, rest) for value in example.values())
    return key in example and _shows(example[key], rest)


def test_the_config_walk_reaches_nested_and_per_name_keys() -> None:
    paths = set(config_paths())
    assert {"totp.digits", "services.*.connector", "permissions.rate_limit"} <= paths
    assert {"permissions.*.write", "permissions.*.max_usd", "connector_host.timeout"} <= paths


def test_a_key_missing_from_the_example_is_found() -> None:
    example = {"permissions": {"rate_limit": 60, "gmail": {"write": "deny"}}}
    assert _shows(example, ["permissions", "*", "write"])
    assert not _shows(example, ["permissions", "*", "max_usd"])
    assert not _shows(example, ["audit", "max_bytes"])


@pytest.mark.parametrize("key", config_paths())
def test_every_config_key_is_in_the_configuration_docs(key: str) -> None:
    """Shown where it goes in the example at the top of docs/configuration.md."""
    assert _shows(config_example(), key.split(".")), (
        f"docs/configuration.md's example should show {key}"
    )
