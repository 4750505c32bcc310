"""Airlock plugin hooks of airlock-notify-signal. Only hooks here: ``airlock --help``
imports this module, so httpx, aiohttp and the notifier load only when asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airlock.plugin import hookimpl

if TYPE_CHECKING:
    from airlock.plugin import Notifier


@hookimpl
def register_notifiers() -> Iterable[type[Notifier]]:
    from airlock_notify_signal._notifier import SignalNotifier

    return [SignalNotifier]


@hookimpl
def register_commands(app: Any) -> None:
    from airlock_notify_signal._setup import register

    register(app)
