"""The daemon answers nobody before its start is done: its ``daemon_started`` record and
the audit cut check, the budgets of calls a stop cut off settled, and service
credentials an older release kept in the core moved to the connector host."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyotp
import yaml
from gateway_fixtures import TestPlugin

from airlock.connector_host.in_process import InProcessHost
from airlock.connector_host.link import Streams
from airlock.daemon.server import serve
from airlock.framework.plugins import get_connectors, get_plugin_manager
from airlock.security.totp import save_secret
from airlock.security.vault import TotpKey, Vault
from airlock.settings.paths import resolve_paths


class _HeldHost(InProcessHost):
    """The connector host, reached only once the test lets it: the daemon's start waits
    for it to take the credentials it moves."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.asked = asyncio.Event()
        self.let_in = asyncio.Event()

    async def connect(self) -> Streams:
        self.asked.set()
        await self.let_in.wait()
        return await super().connect()


def test_the_socket_opens_only_once_the_start_is_done(tmp_path: Path) -> None:
    paths = resolve_paths({"AIRLOCK_HOME": str(tmp_path / "home")})
    paths.ensure_data_dirs()
    secret = pyotp.random_base32()
    save_secret(paths.totp_file, secret)
    # An older release kept a service's credentials in the core's vault.
    Vault(paths.vault_file, TotpKey(secret)).set("notes", {"token": "old"})
    paths.config_file.write_text(yaml.safe_dump({"services": {"notes": {"connector": "notebook"}}}))
    pm = get_plugin_manager(load_entry_points=False, env={}, extra_plugins=[TestPlugin()])

    async def run() -> None:
        host = _HeldHost(get_connectors(pm), paths.connectors_dir)
        ready = asyncio.Event()
        serving = asyncio.create_task(serve(paths, pm, ready=ready, host=host))
        try:
            await asyncio.wait_for(host.asked.wait(), 60)  # the start is moving credentials
            assert not paths.socket.exists(), "agents were let in before the start was done"
            host.let_in.set()
            await asyncio.wait_for(ready.wait(), 60)
            assert paths.socket.exists()
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)

    asyncio.run(run())
    lines = (paths.audit_dir / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert events[:2] == ["daemon_started", "credentials_moved"], events
