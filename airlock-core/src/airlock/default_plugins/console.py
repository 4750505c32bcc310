"""The ``console`` notifier: prompts on the daemon's terminal; answers via ``airlock approve``."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.framework.hookspecs import hookimpl


@hookimpl
def register_notifiers() -> Iterable[str]:
    return ["console = airlock.default_plugins._console_notifier:ConsoleNotifier"]
