"""Finding plugins and asking them for components (see docs/plugins.md).

Callers never touch ``pm.hook`` directly; they use the typed getters below, which also
enforce unique component ids and report which distribution registered what.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from airlock._version import __version__
from airlock.errors import PluginError
from airlock.framework import hookspecs
from airlock.framework._entry_points import entry_points

if TYPE_CHECKING:
    from airlock.framework.connectors import Connector
    from airlock.framework.notifiers import Notifier
    from airlock.framework.policies import Policy

ENTRY_POINT_GROUP = "airlock"
DEFAULT_PLUGINS = (
    "airlock.default_plugins.console",
    "airlock.default_plugins.policies",
)
CORE_DISTRIBUTION = "airlock-core"


@dataclass(frozen=True)
class PluginSource:
    name: str
    distribution: str
    version: str
    builtin: bool


@dataclass(frozen=True)
class LoadFailure:
    name: str
    distribution: str
    error: str


@dataclass
class PluginRegistry:
    """Where each registered plugin came from, and which plugins failed to load."""

    sources: dict[str, PluginSource] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)


class AirlockPluginManager(pluggy.PluginManager):
    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.registry = PluginRegistry()
        self.trace_hooks = False
        """``AIRLOCK_TRACE_PLUGINS=1``: one stderr line per hook call (names, never arguments)."""


def _disabled(env: Mapping[str, str]) -> set[str]:
    raw = env.get("AIRLOCK_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def get_plugin_manager(
    *,
    load_entry_points: bool = True,
    env: Mapping[str, str] | None = None,
    extra_plugins: Iterable[ModuleType | object] = (),
) -> AirlockPluginManager:
    """A fresh plugin manager: built-ins, installed plugins, then *extra_plugins* (tests)."""
    env = os.environ if env is None else env
    disabled = _disabled(env)
    pm = AirlockPluginManager()
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        short = module_name.rsplit(".", 1)[-1]
        if short in disabled:
            continue
        pm.register(importlib.import_module(module_name), name=short)
        pm.registry.sources[short] = PluginSource(short, CORE_DISTRIBUTION, __version__, True)
    if load_entry_points:
        _load_entry_points(pm, disabled)
    for plugin in extra_plugins:
        name = pm.register(plugin)
        if name is not None:
            pm.registry.sources[name] = PluginSource(name, "(test)", "0", False)
    pm.check_pending()
    pm.trace_hooks = env.get("AIRLOCK_TRACE_PLUGINS") == "1"
    return pm


def _load_entry_points(pm: AirlockPluginManager, disabled: set[str]) -> None:
    for ep in entry_points(ENTRY_POINT_GROUP):
        dist, version = ep.distribution, ep.version
        if ep.name in disabled or dist in disabled:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            pm.registry.failures.append(LoadFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
            continue
        if pm.is_registered(plugin):
            continue
        problem = _register_checked(pm, plugin, ep.name)
        if problem is not None:
            pm.registry.failures.append(LoadFailure(ep.name, dist, problem))
            continue
        pm.registry.sources[ep.name] = PluginSource(ep.name, dist, version, False)


def _register_checked(pm: AirlockPluginManager, plugin: object, name: str) -> str | None:
    """Register *plugin*; what is wrong with it (and it stays out) if pluggy refuses it or
    it implements a hook Airlock does not have: a misspelled hook must not stop every
    command, ``--help`` included, at ``check_pending``."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        return f"PluginValidationError: {exc}"
    unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or () if not c.has_spec())
    if not unknown:
        return None
    pm.unregister(plugin)
    hooks = sorted(n for n in vars(hookspecs) if n.startswith("register_"))
    close = difflib.get_close_matches(unknown[0], hooks, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown hook {unknown[0]!r}{guess}; Airlock's hooks are {', '.join(hooks)}"


def _call(pm: AirlockPluginManager, impl: Any, hook_name: str, **kwargs: Any) -> list[Any]:
    """One plugin's implementation of a hook; a plugin whose hook raises is reported
    (``airlock plugins list``) and skipped, so the others and every command keep working.

    Each implementation is called on its own (pluggy would stop at the first that raises),
    so this is also where ``AIRLOCK_TRACE_PLUGINS`` sees every call."""
    if pm.trace_hooks:
        print(f"airlock: hook {hook_name} -> plugin {impl.plugin_name}", file=sys.stderr)
    try:
        return list(impl.function(**kwargs) or ())
    except Exception as exc:
        if pm.trace_hooks:
            print(f"airlock: hook {hook_name} raised {type(exc).__name__}", file=sys.stderr)
        failure = LoadFailure(
            impl.plugin_name,
            _distribution(pm, impl.plugin_name),
            f"{hook_name} raised {type(exc).__name__}: {exc}",
        )
        if failure not in pm.registry.failures:
            pm.registry.failures.append(failure)
        return []


T = TypeVar("T")


def _collect(pm: AirlockPluginManager, hook_name: str, kind: str) -> dict[str, tuple[Any, str]]:
    """Call every implementation of a registration hook; ids must be unique."""
    found: dict[str, tuple[Any, str]] = {}
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():
        plugin_name = impl.plugin_name
        dist = _distribution(pm, plugin_name)
        for component in _call(pm, impl, hook_name):
            cid = str(component.name)
            if cid in found:
                raise PluginError(
                    f"{kind} id {cid!r} is registered by both {found[cid][1]} and {dist}",
                    hint="uninstall one of them or disable it with AIRLOCK_DISABLE_PLUGINS",
                )
            found[cid] = (component, dist)
    return found


def _distribution(pm: AirlockPluginManager, plugin_name: str) -> str:
    source = pm.registry.sources.get(plugin_name)
    return source.distribution if source else plugin_name


def get_connectors(pm: AirlockPluginManager) -> dict[str, type[Connector]]:
    found = _collect(pm, "register_connectors", "connector")
    return {cid: comp for cid, (comp, _) in found.items()}


def get_notifiers(pm: AirlockPluginManager) -> dict[str, type[Notifier]]:
    found = _collect(pm, "register_notifiers", "notifier")
    return {cid: comp for cid, (comp, _) in found.items()}


def get_policies(pm: AirlockPluginManager) -> list[Policy]:
    return [comp for comp, _ in _collect(pm, "register_policies", "policy").values()]


def register_commands(pm: AirlockPluginManager, app: Any) -> None:
    for impl in pm.hook.register_commands.get_hookimpls():
        _call(pm, impl, "register_commands", app=app)


def plugin_report(pm: AirlockPluginManager, *, include_builtin: bool) -> list[dict[str, Any]]:
    """What ``airlock plugins list`` prints: one entry a plugin, plus load failures."""
    components: dict[str, dict[str, list[str]]] = {}
    for hook_name, kind in (
        ("register_connectors", "connectors"),
        ("register_notifiers", "notifiers"),
        ("register_policies", "policies"),
    ):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            ids = [str(c.name) for c in _call(pm, impl, hook_name)]
            components.setdefault(impl.plugin_name, {})[kind] = ids
    report: list[dict[str, Any]] = []
    for name, plugin in pm.list_name_plugin():
        source = pm.registry.sources.get(name)
        if source is None or (source.builtin and not include_builtin):
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        report.append(
            {
                "name": name,
                "distribution": source.distribution,
                "version": source.version,
                "builtin": source.builtin,
                "hooks": hooks,
                "components": components.get(name, {}),
            }
        )
    for failure in pm.registry.failures:
        report.append(
            {
                "name": failure.name,
                "distribution": failure.distribution,
                "error": failure.error,
            }
        )
    return report
