"""Finding plugins and asking them for components (see docs/plugins.md).

Callers never touch ``pm.hook`` directly; they use the typed getters below, which also
enforce unique component ids and report which distribution registered what.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from airlock._version import __version__
from airlock.errors import ConfigError, PluginError
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
ALWAYS_LOADED = frozenset({"policies"})
"""Built-ins ``AIRLOCK_DISABLE_PLUGINS`` does not skip: without the default policies every
session could call every service, and write, with no approval."""


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
        self.loads_entry_points = True
        self.extra_plugins: list[object] = []
        """Plugins registered in code (tests, embedding), which a child connector host
        must register too (see :func:`host_plugin_specs`)."""
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
        if short in disabled and short not in ALWAYS_LOADED:
            continue
        pm.register(importlib.import_module(module_name), name=short)
        pm.registry.sources[short] = PluginSource(short, CORE_DISTRIBUTION, __version__, True)
    pm.loads_entry_points = load_entry_points
    if load_entry_points:
        _load_entry_points(pm, disabled)
    for plugin in extra_plugins:
        pm.extra_plugins.append(plugin)
        name = pm.register(plugin)
        if name is not None:
            pm.registry.sources[name] = PluginSource(name, "(test)", "0", False)
    pm.check_pending()
    pm.trace_hooks = env.get("AIRLOCK_TRACE_PLUGINS") == "1"
    return pm


def host_plugin_specs(pm: AirlockPluginManager) -> list[str]:
    """``MODULE:NAME`` of each plugin registered in code, for a connector host process to
    import and register (an instance is made again from its class, with no arguments)."""
    specs = []
    for plugin in pm.extra_plugins:
        if isinstance(plugin, ModuleType):
            specs.append(plugin.__name__)
            continue
        cls = plugin if isinstance(plugin, type) else type(plugin)
        specs.append(f"{_importable(cls.__module__)}:{cls.__qualname__}")
    return specs


def _importable(module_name: str) -> str:
    """The name another process imports *module_name* by (``python -m pkg.mod`` runs it
    as ``__main__``)."""
    if module_name == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        if spec is not None and spec.name:
            return str(spec.name)
    return module_name


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
    if pm.has_plugin(name):
        return f"another plugin is already named {name!r}: rename its entry point"
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


T = TypeVar("T")

# "ID = module:Class": a component declared by reference (docs/plugins.md).
_REFERENCE = re.compile(
    r"^\s*(?P<id>[A-Za-z0-9][A-Za-z0-9_.-]*)\s*=\s*"
    r"(?P<module>[A-Za-z_][\w.]*)\s*:\s*(?P<attr>[A-Za-z_][\w.]*)\s*$"
)


@dataclass(frozen=True)
class Declared:
    """A component a plugin declared as ``"ID = module:Class"``: its id is known without
    importing anything; its class is imported when a command first uses it."""

    name: str
    module: str
    attr: str
    kind: str
    distribution: str

    @classmethod
    def parse(cls, reference: str, kind: str, distribution: str) -> Declared:
        found = _REFERENCE.match(reference)
        if found is None:
            raise ValueError(
                f"{reference!r} is not a {kind} class nor a reference 'ID = module:Class'"
            )
        return cls(found["id"], found["module"], found["attr"], kind, distribution)

    def load(self) -> Any:
        """The class, checked to be what was declared. A ConfigError otherwise, as for a
        configured component that is not installed: ``airlock status`` shows it against
        the service, and the daemon refuses to start with it."""
        where = f"{self.kind} {self.name!r} of {self.distribution} ({self.module}:{self.attr})"
        try:
            target: Any = importlib.import_module(self.module)
            for part in self.attr.split("."):
                target = getattr(target, part)
        except Exception as exc:
            raise ConfigError(
                f"{where} could not be loaded: {type(exc).__name__}: {exc}",
                hint="reinstall the plugin or disable it with AIRLOCK_DISABLE_PLUGINS",
            ) from exc
        actual = getattr(target, "name", None)
        if not isinstance(target, type) or actual != self.name:
            raise ConfigError(
                f"{where} is not the class it declares: its name is {actual!r}",
                hint="the id before '=' must be the class's name attribute",
            )
        if self.kind == "policy":  # a policy is an object: a fresh one of the class
            return target()
        return target


class Components(Mapping[str, T]):
    """Registered components by id. Ids (and ``in``, ``len``, iteration) need no import;
    a declared component's class is imported when it is first looked up."""

    def __init__(self, found: Mapping[str, Any]) -> None:
        self._found = dict(found)
        self._declared = {cid: c for cid, c in found.items() if isinstance(c, Declared)}

    def origin(self, cid: str) -> tuple[str, str, str]:
        """Where the component *cid*'s class is: module, attribute and distribution,
        known without importing it (a KeyError if none has that id)."""
        declared = self._declared.get(cid)
        if declared is not None:
            return declared.module, declared.attr, declared.distribution
        cls = self._found[cid]
        return cls.__module__, cls.__qualname__, ""

    def __getitem__(self, cid: str) -> T:
        component = self._found[cid]
        if isinstance(component, Declared):
            component = self._found[cid] = component.load()
        return component  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)

    def __contains__(self, cid: object) -> bool:
        return cid in self._found

    def __repr__(self) -> str:
        return f"Components({sorted(self._found)})"


def _call(pm: AirlockPluginManager, impl: Any, hook_name: str, **kwargs: Any) -> list[Any]:
    """One plugin's implementation of a hook; a plugin whose hook raises is reported
    (``airlock plugins list``) and skipped, so the others and every command keep working.

    Each implementation is called on its own (pluggy would stop at the first that raises),
    so this is also where ``AIRLOCK_TRACE_PLUGINS`` sees every call. A registration hook's
    references (``"ID = module:Class"``) become :class:`Declared` components here."""
    if pm.trace_hooks:
        print(f"airlock: hook {hook_name} -> plugin {impl.plugin_name}", file=sys.stderr)
    try:
        found = list(impl.function(**kwargs) or ())
        kind = _KINDS.get(hook_name)
        if kind is not None:
            dist = _distribution(pm, impl.plugin_name)
            found = [Declared.parse(c, kind, dist) if isinstance(c, str) else c for c in found]
        return found
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


_KINDS = {
    "register_connectors": "connector",
    "register_notifiers": "notifier",
    "register_policies": "policy",
}


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


def get_connectors(pm: AirlockPluginManager) -> Components[type[Connector]]:
    """Connector classes by id; a declared one is imported when first looked up."""
    found = _collect(pm, "register_connectors", "connector")
    return Components({cid: comp for cid, (comp, _) in found.items()})


def get_notifiers(pm: AirlockPluginManager) -> Components[type[Notifier]]:
    """Notifier classes by id; a declared one is imported when first looked up."""
    found = _collect(pm, "register_notifiers", "notifier")
    return Components({cid: comp for cid, (comp, _) in found.items()})


def get_policies(pm: AirlockPluginManager) -> list[Policy]:
    """Every policy object; a declared one is a fresh instance of its class."""
    found = _collect(pm, "register_policies", "policy").values()
    return [comp.load() if isinstance(comp, Declared) else comp for comp, _ in found]


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
