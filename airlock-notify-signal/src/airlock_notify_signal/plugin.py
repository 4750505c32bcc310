"""Airlock plugin hooks of airlock-notify-signal. Only hooks here: ``airlock --help``
imports this module, so httpx, aiohttp and the notifier load only when asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airlock.plugin import hookimpl


@hookimpl
def register_notifiers() -> Iterable[str]:
    return ["signal = airlock_notify_signal._notifier:SignalNotifier"]


@hookimpl
def register_commands(app: Any) -> None:
    from airlock_notify_signal._setup import register

    register(app)
