"""Whether a config is valid, and the services it names, told without building its models.

``airlock status`` and ``airlock services`` need the configured services and a refusal
of an invalid config; building the models (pydantic) for that cost about a third of
either command's start-up, while most configs (the template ``airlock init`` writes, or
a person's with a service or two) set plain values. This check accepts only values the
models certainly accept: a whole number within its bounds, text, a duration written the
usual way, a service with a name the models allow and its connector's id. Anything else
(an environment variable setting a key, an unusual value, a mistake) answers "not
known", and the caller loads the config with its models, which accept it or refuse it
with the file, the key and the reason, as always. A service's own settings are its
connector's to check (``airlock.gateway.services``), here as with the models.

The rules below restate :mod:`airlock.settings.config`'s fields; tests/core/
test_config_plain.py checks that every config they accept loads, with the same services.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airlock.settings.durations import MAX_SECONDS

Check = Callable[[Any], bool]

_SERVICE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # config.SERVICE_NAME, whole text
_SETTING = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_DURATION = re.compile(r"([0-9]{1,7}) ?([smhd])|([0-9]{1,9})")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

MAX_FAILURES = 10
"""The most wrong codes ``approvals.max_failures`` may allow before approvals lock
(the config's models use the same bounds)."""
LOCKOUT_FLOOR = 300
"""The shortest ``approvals.failure_window`` and ``approvals.lockout``, in seconds."""


def _seconds(value: Any) -> int | None:
    """A whole number of seconds, or ``90s``, ``60m``, ``8h``, ``7d``, in seconds (a number
    past the longest duration is left to the models, which refuse it)."""
    if type(value) is int:
        return value if value <= MAX_SECONDS else None
    if type(value) is not str:
        return None
    found = _DURATION.fullmatch(value.strip(" "))
    if found is None:
        return None
    number, unit, bare = found.groups()
    return int(bare or number) * _UNITS.get(unit or "s", 1)


def _duration_at_least(least: int) -> Check:
    def check(value: Any) -> bool:
        seconds = _seconds(value)
        return seconds is not None and seconds >= least

    return check


_duration = _duration_at_least(1)
"""A duration (see :func:`_seconds`) above zero."""


def _integer(low: int, high: float = math.inf) -> Check:
    return lambda value: type(value) is int and low <= value <= high


def _text(value: Any) -> bool:
    return type(value) is str


def _flag(value: Any) -> bool:
    return type(value) is bool


def _list_of(item: Check) -> Check:
    return lambda value: type(value) is list and all(item(x) for x in value)


def _path_or_none(value: Any) -> bool:
    return value is None or type(value) is str


def _notifier_settings(value: Any) -> bool:
    """``notifiers``: each notifier's own mapping, checked by the notifier when it starts."""
    return type(value) is dict and all(
        type(name) is str and type(settings) is dict and all(type(k) is str for k in settings)
        for name, settings in value.items()
    )


# Each section of the config and the checks of its keys.
SECTIONS: dict[str, dict[str, Check]] = {
    "totp": {
        "issuer": _text,
        "account": _text,
        "digits": _integer(6, 8),
        "period": _integer(15, 120),
    },
    "sessions": {"default_ttl": _duration, "max_ttl": _duration},
    "approvals": {
        "timeout": _duration,
        "max_failures": _integer(1, MAX_FAILURES),
        "failure_window": _duration_at_least(LOCKOUT_FLOOR),
        "lockout": _duration_at_least(LOCKOUT_FLOOR),
        "notifiers": _list_of(_text),
        "retention": _duration,
    },
    # and a block of each configured service's (_permissions)
    "permissions": {"rate_limit": _integer(1, 100_000)},
    "daemon": {
        "allowed_uids": _list_of(_integer(-(2**63), 2**63 - 1)),
        "idle_timeout": _duration,
        "max_connections_per_uid": _integer(1),
    },
    "mcp": {"approval_wait": _duration},
    "connector_host": {"socket": _path_or_none, "timeout": _duration},
    "audit": {"rotate_bytes": _integer(4096), "max_bytes": _integer(16384), "keep_for": _duration},
    "dashboard": {"listen": _text, "allow_remote": _flag, "session_ttl": _duration},
}
# The config's other keys, which are not sections of keys.
OTHER_KEYS = ("services", "notifiers")
ENV_PREFIX = "AIRLOCK_"


@dataclass(frozen=True)
class PlainService:
    """A configured service as the file names it: its connector's id and that connector's
    settings (as :class:`airlock.settings.config.ServiceConfig` has them)."""

    connector: str
    settings: dict[str, Any]


def plain_services(
    data: Mapping[str, Any], env: Mapping[str, str]
) -> dict[str, PlainService] | None:
    """The configured services, by name, only if the config's models accept *data* (the
    file's sections) with *env* over it; None when that is not known this way."""
    if env_sets_a_key(env):
        return None
    services = _services(data.get("services", {}))
    if services is None:
        return None
    for key, value in data.items():
        if key == "services":
            continue
        if key == "notifiers":
            if not _notifier_settings(value):
                return None
        elif key == "permissions":
            if not _permissions(value, services):
                return None
        elif key not in SECTIONS or not _section(SECTIONS[key], value):
            return None
    if not (_audit(data.get("audit", {})) and _dashboard(data.get("dashboard", {}))):
        return None
    return services


def _services(value: Any) -> dict[str, PlainService] | None:
    """``services``: each named as the models allow, with a connector id and settings
    named plainly (the connector checks their values)."""
    if type(value) is not dict:
        return None
    found = {}
    for name, entry in value.items():
        if type(name) is not str or not _SERVICE_NAME.fullmatch(name) or type(entry) is not dict:
            return None
        if type(entry.get("connector")) is not str:
            return None
        if not all(type(key) is str and _SETTING.fullmatch(key) for key in entry):
            return None
        settings = {key: item for key, item in entry.items() if key != "connector"}
        found[name] = PlainService(entry["connector"], settings)
    return found


def _permissions(value: Any, services: Mapping[str, PlainService]) -> bool:
    """``permissions``: ``rate_limit``, and a block of a configured service."""
    checks = SECTIONS["permissions"]
    return type(value) is dict and all(
        type(key) is str
        and (checks[key](item) if key in checks else key in services and _block(item))
        for key, item in value.items()
    )


def _block(value: Any) -> bool:
    """A service's block: ``write: ask | deny``, ``max_usd``: a sum of at least 0."""
    return _section({"write": _write, "max_usd": _usd}, value)


def _write(value: Any) -> bool:
    return value in ("ask", "deny") and type(value) is str


def _usd(value: Any) -> bool:
    if type(value) is int:
        return 0 <= value <= 2**53
    return value is None or (type(value) is float and math.isfinite(value) and value >= 0)


def env_sets_a_key(env: Mapping[str, str]) -> bool:
    """Whether a variable of *env* sets a key of the config (``AIRLOCK_TOTP__DIGITS``)."""
    return any(_sets_a_key(name) for name in env)


def _sets_a_key(name: str) -> bool:
    """Whether the variable *name* sets a key of the config (``AIRLOCK_TOTP__DIGITS``)."""
    if not name.upper().startswith(ENV_PREFIX):
        return False
    section = name[len(ENV_PREFIX) :].lower().split("__")[0]
    return section in SECTIONS or section in OTHER_KEYS


def _section(checks: Mapping[str, Check], value: Any) -> bool:
    return type(value) is dict and all(
        type(key) is str and key in checks and checks[key](item) for key, item in value.items()
    )


def _audit(section: Mapping[str, Any]) -> bool:
    """Room to rotate: the size budget is at least four files."""
    return bool(
        section.get("max_bytes", 2 * 1024**3) >= 4 * section.get("rotate_bytes", 64 * 1024**2)
    )


def _dashboard(section: Mapping[str, Any]) -> bool:
    """The listen address is one the dashboard may use."""
    if "listen" not in section:
        return True  # the default, 127.0.0.1:8410, is allowed either way
    from airlock.dashboard.address import parse_listen
    from airlock.errors import ConfigError

    try:
        parse_listen(section["listen"], allow_remote=section.get("allow_remote", False))
    except (ConfigError, ValueError):  # ValueError: a port in other digits than 0-9
        return False
    return True
