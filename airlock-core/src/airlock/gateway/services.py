"""Configured services: a service name bound to a connector and its settings
(docs/configuration.md)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airlock.errors import ConfigError, InvalidInput, NotFound

if TYPE_CHECKING:
    from pydantic import BaseModel

    from airlock.framework.connectors import Connector
    from airlock.settings.config import AirlockConfig

# The packages this project publishes, and the components each provides. Only these are
# ever suggested for installation: a name made up from a typo (`pip install airlock-gmial`)
# would invite whoever registers it on PyPI into the person's machine.
PUBLISHED_PACKAGES = {
    "imap": "airlock-mail",
    "maildir": "airlock-mail",
    "gcal": "airlock-gcal",
    "gmail": "airlock-gmail",
    "icloud": "airlock-icloud",
    "openrouter": "airlock-openrouter",
    "mcp": "airlock-mcp-proxy",
    "telegram": "airlock-notify-telegram",
    "signal": "airlock-notify-signal",
}


def missing_component_hint(component_id: str, installed: Iterable[str], kind: str) -> str:
    """What to do about a connector or notifier id no installed plugin provides."""
    package = PUBLISHED_PACKAGES.get(component_id)
    if package is not None:
        return f"pip install {package}"
    close = difflib.get_close_matches(component_id, sorted(installed), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}? `airlock plugins list` shows the installed {kind}s"
    return (
        f"no installed plugin provides the {kind} {component_id!r}; "
        f"`airlock plugins list` shows the installed {kind}s"
    )


@dataclass(frozen=True)
class Service:
    name: str
    connector: type[Connector]
    settings: BaseModel


class ServiceEntry(Protocol):
    """A service as the config names it: ``ServiceConfig``, or
    ``airlock.settings.config_plain.PlainService`` where the config's models were not built."""

    @property
    def connector(self) -> str: ...

    @property
    def settings(self) -> dict[str, Any]: ...


def resolve_service(
    name: str, config: AirlockConfig, connectors: Mapping[str, type[Connector]]
) -> Service:
    """The configured service *name*, with its settings validated by its connector."""
    return resolve_entry(name, config.services, connectors)


def resolve_entry(
    name: str, services: Mapping[str, ServiceEntry], connectors: Mapping[str, type[Connector]]
) -> Service:
    """The service *name* of the configured *services*, its settings validated by its
    connector."""
    entry = services.get(name)
    if entry is None:
        raise NotFound(
            f"no service named {name!r}",
            hint=f"configured services: {', '.join(sorted(services)) or 'none'}",
        )
    cls = connectors.get(entry.connector)
    if cls is None:
        raise ConfigError(
            f"service {name!r} uses connector {entry.connector!r}, which is not installed",
            hint=missing_component_hint(entry.connector, connectors, "connector"),
        )
    try:
        settings = cls.parse_settings(entry.settings, service=name)
    except InvalidInput as exc:
        raise ConfigError(
            exc.message,
            hint=exc.hint or "see docs/configuration.md",
            field=exc.field or f"services.{name}",
        ) from None
    return Service(name, cls, settings)


def resolve_services(
    config: AirlockConfig, connectors: Mapping[str, type[Connector]]
) -> dict[str, Service]:
    """Every configured service, or a ConfigError for the first one that is wrong."""
    return {name: resolve_service(name, config, connectors) for name in config.services}


def describe_services(
    services: Mapping[str, ServiceEntry], connectors: Mapping[str, type[Connector]]
) -> list[dict[str, Any]]:
    """For ``status``: each configured service and, instead of failing, what is wrong
    with it."""
    described: list[dict[str, Any]] = []
    for name, entry in sorted(services.items()):
        item: dict[str, Any] = {"name": name, "connector": entry.connector}
        try:
            resolve_entry(name, services, connectors)
        except ConfigError as exc:
            item["problem"] = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
        described.append(item)
    return described
