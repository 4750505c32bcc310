"""``airlock unlock`` when the connector host cannot take the passphrase (it is being
restarted, or broken): the core's own unlock is still recorded before anything else."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pyotp
import pytest
from gateway_fixtures import TestPlugin

from airlock.common.clock import FakeClock
from airlock.connector_host.link import SocketHost
from airlock.daemon.runtime import Runtime
from airlock.errors import ConnectorError
from airlock.framework.plugins import get_plugin_manager
from airlock.passphrase import seal
from airlock.security.peers import Peer
from airlock.security.totp import save_secret
from airlock.settings.config import AirlockConfig
from airlock.settings.paths import resolve_paths

PASSPHRASE = "correct horse battery staple"


def test_an_unlock_the_connector_host_misses_is_recorded_and_said(
    tmp_path: Path, clock: FakeClock
) -> None:
    paths = resolve_paths({"AIRLOCK_HOME": str(tmp_path / "home")})
    paths.ensure_data_dirs()
    save_secret(paths.totp_file, pyotp.random_base32())
    seal(paths, PASSPHRASE)
    pm = get_plugin_manager(load_entry_points=False, env={}, extra_plugins=[TestPlugin()])
    # Isolated mode, its keeper between two starts of the host: nobody at the socket.
    away = SocketHost(tmp_path / "host.sock", wait=0)
    runtime = Runtime(paths, pm, clock=clock, config=AirlockConfig(), host=away)

    async def unlock() -> None:
        await runtime.start()
        try:
            with pytest.raises(ConnectorError, match="connector host"):
                await runtime.unlock(PASSPHRASE, Peer(uid=os.getuid()))
        finally:
            await runtime.stop()

    asyncio.run(unlock())
    assert not runtime.keeper.locked, "the core opened its lock"
    lines = (paths.audit_dir / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert "daemon_unlocked" in events, "the core was unlocked without its record"
