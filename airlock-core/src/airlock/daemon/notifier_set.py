"""The notifiers the config names, opened with their credentials from the core's vault
(notifiers run in the core; their tokens are the only credentials the core keeps)."""

from __future__ import annotations

from collections.abc import Mapping

from airlock.common.logs import get_logger
from airlock.errors import ConfigError, InvalidInput
from airlock.framework.connectors import validate_settings
from airlock.framework.notifiers import Notifier
from airlock.framework.plugins import AirlockPluginManager, get_notifiers
from airlock.gateway.services import missing_component_hint
from airlock.security.vault import Vault
from airlock.settings.config import AirlockConfig

log = get_logger("airlock.daemon")


def open_notifiers(
    pm: AirlockPluginManager, config: AirlockConfig, vault: Vault, *, enrolled: bool
) -> tuple[dict[str, Notifier], set[str]]:
    """The configured notifiers, and the ids of every installed one (installed notifiers
    may receive credentials before they are configured: `airlock telegram setup` stores
    the token first, then writes the config)."""
    available = get_notifiers(pm)
    opened: dict[str, Notifier] = {}
    for name in config.approvals.notifiers:
        cls = available.get(name)
        if cls is None:
            raise ConfigError(
                f"approvals.notifiers names {name!r}, which is not installed",
                hint=missing_component_hint(name, available, "notifier"),
            )
        try:
            settings = validate_settings(
                cls.Settings, config.notifiers.get(name, {}), where=f"notifiers.{name}"
            )
        except InvalidInput as exc:
            raise ConfigError(
                exc.message,
                field=exc.field,
                hint=f"see `airlock {name} setup` or docs/configuration.md",
            ) from None
        stored = vault.get(name) if enrolled and vault.has(name) else {}
        opened[name] = cls(settings, cls.Credentials.model_validate(stored))
    return opened, set(available)


async def close_notifiers(notifiers: Mapping[str, Notifier]) -> None:
    for notifier in notifiers.values():
        try:
            await notifier.close()
        except Exception as exc:
            log.warning(
                "notifier_close_failed", notifier=type(notifier).__name__, error=type(exc).__name__
            )
