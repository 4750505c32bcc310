"""The ``console`` notifier: prompts on the daemon's terminal; answers via ``airlock approve``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airlock.framework.hookspecs import hookimpl

if TYPE_CHECKING:
    from airlock.framework.notifiers import Notifier


@hookimpl
def register_notifiers() -> Iterable[type[Notifier]]:
    from airlock.default_plugins._console_notifier import ConsoleNotifier

    return [ConsoleNotifier]
