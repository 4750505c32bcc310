"""The configuration keys of the original Airlock README, read as today's.

``tokens: {default_ttl_minutes, max_ttl_minutes}``, ``notifications: {provider, chat_id}``
and ``permissions: {default: read}`` still load: each becomes today's key, and a one-line
notice says what to write instead. A value whose meaning Airlock cannot honour
(``permissions: {default: write}``, a provider other than telegram) is refused with the
reason, never silently dropped. ``totp: {issuer, digits, period}`` needs no translation:
those are today's keys (digits 6 to 8, period 15 to 120 seconds). ``vault: {key: totp}`` is
how the vault is keyed unless the passphrase lock is on, and that lock is turned on by
``airlock lock --set-passphrase`` (it seals files; a config line cannot), so
``key: passphrase`` is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airlock.errors import ConfigError


def _refuse(path: Path, key: str, reason: str, hint: str) -> ConfigError:
    return ConfigError(f"{path}: key {key}: {reason}", hint=hint, field=key)


def _minutes(path: Path, key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _refuse(path, key, "must be a positive number of minutes", "e.g. 60")
    return f"{int(value)}m"


def _tokens(path: Path, data: dict[str, Any], notices: list[str]) -> None:
    tokens = data.pop("tokens")
    if not isinstance(tokens, dict):
        raise _refuse(path, "tokens", "expected a mapping", "write sessions: {default_ttl: 60m}")
    sessions = data.setdefault("sessions", {})
    for old, new in (("default_ttl_minutes", "default_ttl"), ("max_ttl_minutes", "max_ttl")):
        if old in tokens:
            sessions.setdefault(new, _minutes(path, f"tokens.{old}", tokens.pop(old)))
            notices.append(
                f"{path}: tokens.{old} is now sessions.{new}: write "
                f"`sessions: {{{new}: {sessions[new]}}}` instead"
            )
    if tokens:
        name = sorted(tokens)[0]
        raise _refuse(path, f"tokens.{name}", "unknown key", "see docs/configuration.md")


def _notifications(path: Path, data: dict[str, Any], notices: list[str]) -> None:
    old = data.pop("notifications")
    provider = old.get("provider") if isinstance(old, dict) else None
    if provider != "telegram":
        raise _refuse(
            path,
            "notifications.provider",
            f"{provider!r} cannot be read from the old notifications section",
            "run `airlock telegram setup` or `airlock signal setup`: it writes today's keys",
        )
    chat_id = old.get("chat_id")
    settings = data.setdefault("notifiers", {}).setdefault("telegram", {})
    settings.setdefault("chat_id", chat_id)
    # In a private chat with a bot, the chat id is the person's user id.
    settings.setdefault("user_id", chat_id)
    approvals = data.setdefault("approvals", {})
    listed = approvals.setdefault("notifiers", ["console"])
    if "telegram" not in listed:
        listed.append("telegram")
    notices.append(
        f"{path}: notifications is now notifiers.telegram plus approvals.notifiers: write "
        f"`notifiers: {{telegram: {{chat_id: {chat_id}, user_id: {chat_id}}}}}` and "
        "`approvals: {notifiers: [console, telegram]}` instead"
    )


def _permissions_default(path: Path, data: dict[str, Any], notices: list[str]) -> None:
    permissions = data["permissions"]
    default = permissions.pop("default")
    if default != "read":
        raise _refuse(
            path,
            "permissions.default",
            f"{default!r} cannot be honoured: a session is read-only, and every write "
            "needs the person's approval of that exact call",
            "remove the line",
        )
    notices.append(
        f"{path}: permissions.default: read is how Airlock always works now (sessions "
        "are read-only; each write is approved on its own): remove the line"
    )


def _vault(path: Path, data: dict[str, Any], notices: list[str]) -> None:
    vault = data.pop("vault")
    if not isinstance(vault, dict):
        raise _refuse(path, "vault", "expected a mapping", "remove the vault section")
    for name in sorted(set(vault) - {"key"}):
        raise _refuse(path, f"vault.{name}", "unknown key", "remove the vault section")
    if vault.get("key", "totp") != "totp":
        raise _refuse(
            path,
            "vault.key",
            f"{vault['key']!r} cannot be set here: the passphrase lock seals the TOTP secret "
            "and the vault's key, which a config line cannot do",
            "remove the vault section and run `airlock lock --set-passphrase`",
        )
    notices.append(
        f"{path}: vault.key: totp is how the vault is keyed unless the passphrase lock is "
        "on (`airlock lock --set-passphrase`): remove the vault section"
    )


def upgrade(path: Path, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """*data* with the old keys turned into today's, and the notices saying so."""
    notices: list[str] = []
    if "tokens" in data:
        _tokens(path, data, notices)
    if "notifications" in data:
        _notifications(path, data, notices)
    if isinstance(data.get("permissions"), dict) and "default" in data["permissions"]:
        _permissions_default(path, data, notices)
    if "vault" in data:
        _vault(path, data, notices)
    return data, notices
