"""``airlock serve`` with the echo test connector added: run as
``python -m tests.notifier_harness.serve`` with AIRLOCK_HOME set. Installed plugins (the
notifier under test) load from their entry points as in production."""

from __future__ import annotations

import asyncio

from airlock.common.logs import configure_logging
from airlock.daemon.server import serve
from airlock.framework.plugins import get_plugin_manager
from airlock.settings.paths import resolve_paths
from tests.notifier_harness.echo_plugin import EchoPlugin


def main() -> None:
    configure_logging(json=True)
    pm = get_plugin_manager(extra_plugins=[EchoPlugin()])
    asyncio.run(serve(resolve_paths(), pm))


if __name__ == "__main__":
    main()
