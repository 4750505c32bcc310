"""Airlock plugin hooks of airlock-notify-telegram. Only hooks here: ``airlock --help``
imports this module, so httpx and the notifier load only when asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airlock.plugin import hookimpl


@hookimpl
def register_notifiers() -> Iterable[str]:
    return ["telegram = airlock_notify_telegram._notifier:TelegramNotifier"]


@hookimpl
def register_commands(app: Any) -> None:
    from airlock_notify_telegram._setup import register

    register(app)
