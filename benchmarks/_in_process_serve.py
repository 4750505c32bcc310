"""``airlock serve`` with its connectors run on the daemon's own event loop (the
connector host's code over a socket pair, without its process): the gateway as it was
before connectors moved to a process of their own, measured in the same run as the
real daemon to price the hop. Never how a daemon runs for a person.

    AIRLOCK_HOME=... python benchmarks/_in_process_serve.py
"""

from __future__ import annotations

from airlock.common.logs import configure_logging
from airlock.common.loop import run_loop
from airlock.connector_host.in_process import InProcessHost
from airlock.daemon.server import serve
from airlock.framework.plugins import get_connectors, get_plugin_manager
from airlock.settings.paths import resolve_paths


def main() -> None:
    configure_logging(json=True)
    paths = resolve_paths()
    pm = get_plugin_manager()
    host = InProcessHost(get_connectors(pm), paths.connectors_dir)
    run_loop(serve(paths, pm, host=host))


if __name__ == "__main__":
    main()
