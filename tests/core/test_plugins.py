"""The plugin framework: discovery, failures, duplicates, disabling, the combine rule."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.errors import PluginError
from airlock.framework.connectors import Access
from airlock.framework.plugins import (
    get_connectors,
    get_notifiers,
    get_plugin_manager,
    get_policies,
    plugin_report,
)
from airlock.framework.policies import Decision, PolicyContext, Verdict, combine, evaluate

BUILTIN_POLICIES = {"scope", "read-only", "rate-limit", "redact-codes"}


def make_distribution(site: Path, dist: str, module: str, body: str) -> None:
    """A real installed distribution (dist-info + entry point) on a sys.path entry."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[airlock]\n{module} = {module}\n")


CONNECTOR_PLUGIN = """
from airlock.framework.hookspecs import hookimpl
from airlock.framework.connectors import Connector

class Dup(Connector):
    name = "dup"

@hookimpl
def register_connectors():
    return [Dup]
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_installed_plugin_is_found_through_its_entry_point(site: Path) -> None:
    make_distribution(site, "airlock-dupe-a", "dupe_a", CONNECTOR_PLUGIN)
    pm = get_plugin_manager(env={})
    assert "dup" in get_connectors(pm)
    entry = next(e for e in plugin_report(pm, include_builtin=False) if e["name"] == "dupe_a")
    assert entry["distribution"] == "airlock-dupe-a"
    assert entry["version"] == "1.2.3"
    assert entry["hooks"] == ["register_connectors"]
    assert entry["components"]["connectors"] == ["dup"]


def test_two_plugins_registering_one_id_is_an_error_naming_both(site: Path) -> None:
    make_distribution(site, "airlock-dupe-a", "dupe_a", CONNECTOR_PLUGIN)
    make_distribution(site, "airlock-dupe-b", "dupe_b", CONNECTOR_PLUGIN)
    pm = get_plugin_manager(env={})
    with pytest.raises(PluginError) as info:
        get_connectors(pm)
    assert "airlock-dupe-a" in info.value.message
    assert "airlock-dupe-b" in info.value.message


def test_a_plugin_that_fails_to_import_is_reported_and_others_still_load(site: Path) -> None:
    make_distribution(site, "airlock-broken", "broken_plugin", "import no_such_module_xyz\n")
    make_distribution(site, "airlock-dupe-a", "dupe_a", CONNECTOR_PLUGIN)
    pm = get_plugin_manager(env={})
    assert "dup" in get_connectors(pm)
    failures = [e for e in plugin_report(pm, include_builtin=False) if "error" in e]
    assert [f for f in failures if f["distribution"] == "airlock-broken"] == [
        {
            "name": "broken_plugin",
            "distribution": "airlock-broken",
            "error": "ModuleNotFoundError: No module named 'no_such_module_xyz'",
        }
    ]


def test_disabled_plugins_are_not_loaded(site: Path) -> None:
    make_distribution(site, "airlock-dupe-a", "dupe_a", CONNECTOR_PLUGIN)
    make_distribution(site, "airlock-dupe-b", "dupe_b", CONNECTOR_PLUGIN)
    pm = get_plugin_manager(env={"AIRLOCK_DISABLE_PLUGINS": "dupe_b, airlock-nothing"})
    assert "dup" in get_connectors(pm)
    pm = get_plugin_manager(env={"AIRLOCK_DISABLE_PLUGINS": "airlock-dupe-a,airlock-dupe-b"})
    assert "dup" not in get_connectors(pm)


EMPTY_PLUGIN = """
from airlock.framework.hookspecs import hookimpl

@hookimpl
def register_policies():
    return []
"""


def test_a_plugin_named_like_a_builtin_is_reported_and_the_builtin_stays(site: Path) -> None:
    """An entry point called ``policies`` (or ``console``, or another plugin's name) is
    refused and reported, not a traceback for every command, and takes nothing's place."""
    make_distribution(site, "airlock-shadow", "policies", EMPTY_PLUGIN)
    pm = get_plugin_manager(env={})
    assert {p.name for p in get_policies(pm)} >= BUILTIN_POLICIES
    (failure,) = [e for e in plugin_report(pm, include_builtin=False) if "error" in e]
    assert failure["distribution"] == "airlock-shadow"
    assert "another plugin is already named 'policies'" in failure["error"]


def test_the_builtin_policies_cannot_be_disabled() -> None:
    """Without them every session could call every service and write without an
    approval: ``AIRLOCK_DISABLE_PLUGINS`` skips add-ons (and the console notifier), never
    what enforces the approvals."""
    env = {"AIRLOCK_DISABLE_PLUGINS": "policies,airlock-core,console"}
    pm = get_plugin_manager(env=env, load_entry_points=False)
    assert {p.name for p in get_policies(pm)} == BUILTIN_POLICIES
    assert "console" not in get_notifiers(pm)


def test_builtins_come_through_the_same_hooks() -> None:
    pm = get_plugin_manager(env={}, load_entry_points=False)
    assert "console" in get_notifiers(pm)
    builtin = plugin_report(pm, include_builtin=True)
    assert {e["name"] for e in builtin} == {"console", "policies"}
    assert plugin_report(pm, include_builtin=False) == []


def test_each_plugin_manager_is_fresh(site: Path) -> None:
    first = get_plugin_manager(env={})
    make_distribution(site, "airlock-dupe-a", "dupe_a", CONNECTOR_PLUGIN)
    second = get_plugin_manager(env={})
    assert "dup" not in get_connectors(first)
    assert "dup" in get_connectors(second)


def v(decision: Decision) -> Verdict:
    return Verdict(decision, decision.value)


def test_deny_beats_ask_beats_allow() -> None:
    assert combine([v(Decision.ALLOW), v(Decision.DENY), v(Decision.ASK)]).decision is Decision.DENY
    assert combine([v(Decision.ALLOW), None, v(Decision.ASK)]).decision is Decision.ASK
    assert combine([None, v(Decision.ALLOW)]).decision is Decision.ALLOW
    assert combine([None, None]).decision is Decision.ALLOW


class Exploding:
    name = "exploding"

    def check(self, ctx: PolicyContext) -> Verdict | None:
        raise RuntimeError("bug")


class Allowing:
    name = "allowing"

    def check(self, ctx: PolicyContext) -> Verdict | None:
        return Verdict(Decision.ALLOW, "fine")


def test_a_policy_that_raises_denies() -> None:
    ctx = PolicyContext(stage="operation", service="mail", access=Access.READ)
    verdict = evaluate([Allowing(), Exploding()], ctx)
    assert verdict.decision is Decision.DENY
    assert verdict.policy == "exploding"


def test_an_entry_point_may_name_an_object_inside_a_module(site: Path) -> None:
    body = (
        CONNECTOR_PLUGIN.replace(
            "@hookimpl\ndef register_connectors():",
            "class P:\n    @hookimpl\n    def register_connectors(self):",
        ).replace("\n    return [Dup]", "\n        return [Dup]")
        + "\nplugin = P()\n"
    )
    (site / "objplugin.py").write_text(textwrap.dedent(body))
    info = site / "airlock_objplugin-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: airlock-objplugin\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text(
        "[console_scripts]\nx = y:z\n\n[airlock]\nobjplugin = objplugin:plugin\n"
    )
    pm = get_plugin_manager(env={})
    assert "dup" in get_connectors(pm)
    entry = next(e for e in plugin_report(pm, include_builtin=False) if e["name"] == "objplugin")
    assert (entry["distribution"], entry["version"]) == ("airlock-objplugin", "2.0")


COMMAND_PLUGIN = """
import typer
from airlock.framework.hookspecs import hookimpl

@hookimpl
def register_commands(app):
    group = typer.Typer(help="Example service.")
    app.add_typer(group, name="example")

    @group.command()
    def hello(name: str) -> None:
        typer.echo(f"hello {name}")
"""


def test_a_plugin_adds_commands_through_register_commands(site: Path) -> None:
    from typer.testing import CliRunner

    from airlock.cli import build_app

    make_distribution(site, "airlock-example", "example_plugin", COMMAND_PLUGIN)
    app = build_app(get_plugin_manager(env={}))
    result = CliRunner().invoke(app, ["example", "hello", "world"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "hello world"


def test_trace_plugins_prints_each_hook_call(capsys: pytest.CaptureFixture[str]) -> None:
    from airlock.framework.plugins import get_policies as policies_of

    pm = get_plugin_manager(load_entry_points=False, env={"AIRLOCK_TRACE_PLUGINS": "1"})
    assert policies_of(pm)
    err = capsys.readouterr().err
    assert "airlock: hook register_policies -> plugin policies" in err


def test_without_the_switch_nothing_is_traced(capsys: pytest.CaptureFixture[str]) -> None:
    from airlock.framework.plugins import get_policies as policies_of

    policies_of(get_plugin_manager(load_entry_points=False, env={}))
    assert "airlock: hook" not in capsys.readouterr().err


DECLARING_PLUGIN = """
from airlock.framework.hookspecs import hookimpl

@hookimpl
def register_connectors():
    return [
        "lazy = lazy_connector:Lazy",
        "broken = lazy_missing:Gone",
        "liar = lazy_connector:Liar",
    ]

@hookimpl
def register_policies():
    return ["counting = lazy_connector:Counting"]
"""

LAZY_CONNECTOR = """
from airlock.framework.connectors import Connector

class Lazy(Connector):
    name = "lazy"

class Liar(Connector):
    name = "not-liar"

class Counting:
    name = "counting"

    def check(self, ctx):
        return None
"""


@pytest.fixture
def lazy_site(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """*site* with the declaring plugin; its modules are imported afresh by each test."""
    for module in ("lazy_plugin", "lazy_connector"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    make_distribution(site, "airlock-lazy", "lazy_plugin", DECLARING_PLUGIN)
    (site / "lazy_connector.py").write_text(textwrap.dedent(LAZY_CONNECTOR))
    yield site
    for module in ("lazy_plugin", "lazy_connector"):
        sys.modules.pop(module, None)


def test_a_declared_component_is_listed_without_importing_its_module(lazy_site: Path) -> None:
    pm = get_plugin_manager(env={})
    entry = next(e for e in plugin_report(pm, include_builtin=False) if e["name"] == "lazy_plugin")
    assert entry["components"]["connectors"] == ["lazy", "broken", "liar"]
    assert entry["components"]["policies"] == ["counting"]
    connectors = get_connectors(pm)
    assert {"lazy", "broken", "liar"} <= set(connectors)
    assert "lazy_connector" not in sys.modules
    assert connectors["lazy"].name == "lazy"
    assert connectors["lazy"] is connectors["lazy"]
    assert "lazy_connector" in sys.modules


def test_a_declared_component_that_cannot_load_is_a_config_error_naming_it(
    lazy_site: Path,
) -> None:
    from airlock.errors import ConfigError

    connectors = get_connectors(get_plugin_manager(env={}))
    with pytest.raises(ConfigError) as missing:
        connectors["broken"]
    assert "connector 'broken' of airlock-lazy (lazy_missing:Gone)" in missing.value.message
    assert "ModuleNotFoundError" in missing.value.message
    with pytest.raises(ConfigError, match="its name is 'not-liar'"):
        connectors.get("liar")


def test_a_declared_policy_is_a_fresh_object_each_time(lazy_site: Path) -> None:
    from airlock.framework.plugins import get_policies as policies_of

    pm = get_plugin_manager(env={})
    first = {p.name: p for p in policies_of(pm)}
    second = {p.name: p for p in policies_of(pm)}
    assert {"scope", "read-only", "rate-limit", "redact-codes", "counting"} == set(first)
    assert first["counting"] is not second["counting"]
    assert type(first["rate-limit"]).__name__ == "RateLimitPolicy"


def test_a_malformed_reference_is_reported_against_its_plugin(site: Path) -> None:
    body = DECLARING_PLUGIN.replace('"lazy = lazy_connector:Lazy"', '"lazy_connector.Lazy"')
    make_distribution(site, "airlock-badref", "badref_plugin", body)
    pm = get_plugin_manager(env={})
    assert "lazy" not in get_connectors(pm)
    failures = [e for e in plugin_report(pm, include_builtin=False) if "error" in e]
    assert failures == [
        {
            "name": "badref_plugin",
            "distribution": "airlock-badref",
            "error": "register_connectors raised ValueError: 'lazy_connector.Lazy' is not a "
            "connector class nor a reference 'ID = module:Class'",
        }
    ]


def test_every_first_party_component_is_declared_by_reference() -> None:
    """Listing components imports no first-party component module (docs/plugins.md)."""
    pm = get_plugin_manager(env={})
    for hook_name in ("register_connectors", "register_notifiers", "register_policies"):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            returned = list(impl.function())
            assert all(isinstance(c, str) for c in returned), (impl.plugin_name, returned)
