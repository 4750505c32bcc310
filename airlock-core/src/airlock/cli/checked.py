"""What the last full check of the configured services found, kept so that ``airlock
status`` and ``airlock services`` need not import the connectors to say it again.

Checking a service's settings builds its connector's settings model: with pydantic
imported for it, about 100 ms of a command that otherwise takes about 120
(benchmarks/cli_startup.py). What the check finds depends on three things, and
``services-checked-UID.json`` in the CLI's cache directory keeps it under a key of all:

- the config: its text (SHA-256), only when :mod:`airlock.settings.config_plain` reads it
  plainly, with no ``AIRLOCK_`` variable setting a key and no old key to tell about (the
  next run then needs neither YAML nor the config's models to know it is the same);
- the code that checks: Airlock's version, the Python running and ``sys.path``, the
  plugins with their versions (and those that failed to load), where each connector's
  class is, and every module file loaded when the check ran: its inode, size and mtime
  (an editable install changes with no new version);
- what the settings name on this machine: each text value of a service's settings read
  as a path (after ``~``), as ``stat`` finds it. A Maildir is checked again when its
  ``cur/``, ``new/`` or ``tmp/`` comes or goes, which changes its directory's mtime.

A settings check that looks at anything else (an environment variable other than HOME,
a file its values do not name, the clock, a module it failed to import) may be reported
stale here until the config or the code changes: docs/plugins.md asks connectors to
check their values and the paths they name, nothing more.

This only changes what the two commands report, never what runs: the daemon checks every
service's settings with its connector whenever it loads a config, whatever is kept here.
A kept check is used only from the user's own 0600 regular file, whole (every part of its
key there and equal), naming services and connectors in text with no control or format
character (a terminal escape); anything else, a file that does not parse or has a field
of the wrong type included, means the full check, silently. A file that cannot be
written (isolated mode may run the CLI as a user whose cache directory is not writable)
is left unwritten, and the command goes on.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from airlock.cli.context import CliState
    from airlock.framework.connectors import Connector
    from airlock.framework.plugins import Components
    from airlock.settings.config_plain import PlainService

    ConnectorFacts = Callable[[type[Connector]], dict[str, Any]]

FORMAT = 1
MAX_BYTES = 4 << 20
MAX_PATHS = 256
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})  # as common.text.untrusted_line
_SERVICE = ({"name", "connector"}, {"name", "connector", "problem"})
_OPERATION = {"name", "access", "description", "params"}
_PARAM = {"name", "type", "required", "description"}
_PARAMS = (_PARAM, _PARAM | {"default"})


@dataclass(frozen=True)
class Checked:
    services: list[dict[str, Any]]
    """As :func:`airlock.gateway.services.describe_services` says: each service's name,
    connector and, when something is wrong with it, its problem."""
    connectors: dict[str, dict[str, Any]] | None = None
    """For ``airlock services``: what it shows of each named connector that loads (its
    title, whether it lists operations, its operations); None when not asked for."""


def cache_file(state: CliState) -> Path:
    return state.paths.cache_dir / f"services-checked-{os.geteuid()}.json"


def kept(
    state: CliState, connectors: Components[type[Connector]], *, operations: bool = False
) -> Checked | None:
    """What the last full check found, when nothing it depends on has changed since (and
    it kept the *operations* of the connectors, if asked for); None otherwise."""
    data = _read(cache_file(state))  # first: with no file kept, no key is worked out
    if data is None:
        return None
    key = _key(state, connectors)
    if key is None or data.get("key") != key:
        return None
    if not (_same_files(data.get("modules")) and _same_paths(data.get("paths"))):
        return None
    services = data.get("services")
    facts = data.get("connectors") if operations else None
    if not _services(services) or (operations and not _facts(facts)):
        return None
    if not _clean([services, facts]):
        return None
    return Checked(list(services), dict(facts) if facts is not None else None)


def check(
    state: CliState,
    connectors: Components[type[Connector]],
    facts_of: ConnectorFacts | None = None,
) -> Checked:
    """The configured services as their connectors check them (an invalid config is
    refused first, as by ``state.has_services``), with what *facts_of* says of each named
    connector that loads; kept for the next run when the config and the code allow."""
    if not state.has_services:
        return Checked([], {} if facts_of is not None else None)
    key = _key(state, connectors)
    plain = state.plain_services
    # Before the check: what changes while it runs is seen as changed by the next run.
    paths = _paths(plain) if key is not None and plain and not state.config_notices else None
    from airlock.gateway.services import describe_services

    services = describe_services(state.services, connectors)
    facts = None
    if facts_of is not None:
        facts = {}
        for cid in sorted({item["connector"] for item in services}):
            cls = connectors.get(cid)
            if cls is not None:
                facts[cid] = facts_of(cls)
    checked = Checked(services, facts)
    if key is not None and paths is not None:
        data = {"key": key, "paths": paths, "services": services, "connectors": facts}
        _save(state, connectors, data)
    return checked


def _key(state: CliState, connectors: Components[type[Connector]]) -> dict[str, Any] | None:
    """What the check depends on that is known before reading the config with YAML; None
    when the config's text is not all of it (or there is none)."""
    from airlock._version import __version__
    from airlock.settings.config_plain import env_sets_a_key

    text = state.config_text
    if text is None or env_sets_a_key(os.environ):
        return None
    from hashlib import sha256

    registry = state.pm.registry
    return {
        "format": FORMAT,
        "airlock": __version__,
        "python": [sys.version, sys.executable],
        "sys_path": sys.path,
        "plugins": sorted([s.name, s.distribution, s.version] for s in registry.sources.values()),
        "failures": sorted([f.name, f.distribution, f.error] for f in registry.failures),
        "connectors": {cid: list(connectors.origin(cid)) for cid in sorted(connectors)},
        "config": sha256(text.encode()).hexdigest(),
    }


def _identity(path: str) -> list[int] | str:
    """What ``stat`` says of *path* that changes when it is replaced, edited, or (a
    directory) gains or loses an entry; or why it could not say."""
    try:
        found = os.stat(path)
    except (OSError, ValueError) as exc:
        return type(exc).__name__
    return [found.st_dev, found.st_ino, found.st_mode, found.st_size, found.st_mtime_ns]


def _expanded(text: str) -> str:
    return os.path.expanduser(text) if text.startswith("~") else text


def _paths(services: Mapping[str, PlainService]) -> list[list[Any]] | None:
    """Each text value of the services' settings, read as a path: as written, after
    ``~``, and its :func:`_identity`; None when there are too many to look at."""
    texts: dict[str, None] = {}
    for service in services.values():
        for text in _texts(service.settings):
            texts[text] = None
            if len(texts) > MAX_PATHS:
                return None
    return [[text, _expanded(text), _identity(_expanded(text))] for text in texts]


def _texts(value: Any) -> Iterator[str]:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _same_paths(paths: Any) -> bool:
    return isinstance(paths, list) and all(
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], str)
        and entry[1:] == [_expanded(entry[0]), _identity(_expanded(entry[0]))]
        for entry in paths
    )


def _module_files() -> dict[str, list[int] | str]:
    files: dict[str, list[int] | str] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path not in files:
            files[path] = _identity(path)
    return files


def _same_files(files: Any) -> bool:
    return (
        isinstance(files, dict)
        and bool(files)
        and all(_identity(path) == found for path, found in files.items())
    )


def _read(path: Path) -> dict[str, Any] | None:
    """The kept check, if it is the user's own private regular file and parses."""
    try:
        # O_NONBLOCK: a FIFO put there must not hang the command (it is refused below).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        found = os.fstat(fd)
        if (
            not stat.S_ISREG(found.st_mode)
            or found.st_uid != os.geteuid()
            or found.st_mode & 0o077
            or found.st_size > MAX_BYTES
        ):
            return None
        raw = os.read(fd, MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _services(value: Any) -> TypeGuard[list[Any]]:
    if not isinstance(value, list) or not value:
        return False
    for item in value:
        if not isinstance(item, dict) or set(item) not in _SERVICE:
            return False
        if not all(isinstance(text, str) for text in item.values()):
            return False
    names = [item["name"] for item in value]
    return names == sorted(set(names))


def _facts(value: Any) -> TypeGuard[dict[str, Any]]:
    if not isinstance(value, dict):
        return False
    for facts in value.values():
        if not isinstance(facts, dict) or set(facts) != {"title", "lists_operations", "operations"}:
            return False
        operations = facts["operations"]
        if not (isinstance(facts["title"], str) and isinstance(facts["lists_operations"], bool)):
            return False
        if not isinstance(operations, list) or not all(_operation(op) for op in operations):
            return False
    return True


def _operation(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) != _OPERATION:
        return False
    if not all(isinstance(value[k], str) for k in ("name", "access", "description")):
        return False
    params = value["params"]
    return isinstance(params, list) and all(
        isinstance(p, dict)
        and set(p) in _PARAMS
        and isinstance(p["name"], str)
        and isinstance(p["type"], str)
        and isinstance(p["description"], str)
        and isinstance(p["required"], bool)
        for p in params
    )


def _clean(value: Any) -> bool:
    """Whether every text in *value* (keys too) is free of control and format characters,
    and it holds nothing but what JSON makes."""
    import unicodedata

    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if any(unicodedata.category(char) in _UNSAFE for char in item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif item is not None and not isinstance(item, bool | int | float):
            return False
    return True


def _save(state: CliState, connectors: Components[type[Connector]], data: dict[str, Any]) -> None:
    """Keep *data* with the files of every module loaded now, unless a named connector
    failed to load (what fixes it, a package installed, changes no file looked at here) or
    a text would not be shown from the file."""
    from airlock.errors import ConfigError

    for cid in {item["connector"] for item in data["services"]}:
        if cid in connectors:
            try:
                connectors[cid]
            except ConfigError:
                return
    if not _clean([data["services"], data["connectors"]]):
        return
    from airlock.common.files import atomic_write_private, ensure_private_dir

    data["modules"] = _module_files()
    path = cache_file(state)
    try:
        ensure_private_dir(path.parent)
        atomic_write_private(path, json.dumps(data).encode())
    except OSError:
        pass  # not kept: the next run checks again
