"""Whether a config is valid and names no service, told without building its models.

``airlock status`` and ``airlock services`` need the configured services and a refusal
of an invalid config; building the models (pydantic) for that cost about a third of
either command's start-up, while most configs (the template ``airlock init`` writes, or
none at all) set a few plain values and no service. This check accepts only values the
models certainly accept: a whole number within its bounds, text, a duration written the
usual way. Anything else (a service, an environment variable setting a key, an unusual
value, a mistake) answers "not known", and the caller loads the config with its models,
which accept it or refuse it with the file, the key and the reason, as always.

The rules below restate :mod:`airlock.settings.config`'s fields; tests/core/
test_config_plain.py checks that every config they accept loads, with no service.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

_DURATION = re.compile(r"([0-9]{1,7}) ?([smhd])|([0-9]{1,9})")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> bool:
    """A whole number of seconds above zero, or ``90s``, ``60m``, ``8h``, ``7d``."""
    if type(value) is int:
        return value > 0
    if type(value) is not str:
        return False
    found = _DURATION.fullmatch(value.strip(" "))
    if found is None:
        return False
    number, unit, bare = found.groups()
    return int(bare or number) * _UNITS.get(unit or "s", 1) > 0


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
        "max_failures": _integer(1, 100),
        "failure_window": _duration,
        "lockout": _duration,
        "notifiers": _list_of(_text),
        "retention": _duration,
    },
    # A block of permissions names a service: with none configured only rate_limit.
    "permissions": {"rate_limit": _integer(1, 100_000)},
    "daemon": {
        "allowed_uids": _list_of(_integer(-(2**63), 2**63 - 1)),
        "idle_timeout": _duration,
        "max_connections_per_uid": _integer(1),
    },
    "mcp": {"approval_wait": _duration},
    "connector_host": {"socket": _path_or_none, "timeout": _duration},
    "audit": {"rotate_bytes": _integer(4096), "max_bytes": _integer(16384)},
    "dashboard": {"listen": _text, "allow_remote": _flag, "session_ttl": _duration},
}
# The config's other keys, which are not sections of keys.
OTHER_KEYS = ("services", "notifiers")
ENV_PREFIX = "AIRLOCK_"


def valid_without_services(data: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    """True only if the config's models accept *data* (the file's sections) with *env*
    over it, and it configures no service; False when that is not known this way."""
    if any(_sets_a_key(name) for name in env):
        return False
    for key, value in data.items():
        if key == "services":
            if type(value) is not dict or value:
                return False
        elif key == "notifiers":
            if not _notifier_settings(value):
                return False
        elif key not in SECTIONS or not _section(SECTIONS[key], value):
            return False
    return _audit(data.get("audit", {})) and _dashboard(data.get("dashboard", {}))


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
