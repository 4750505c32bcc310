"""The daemon's connection to its connector host: started (or reached) the way the
config says, and greeted on every new connection with the services and, after
``airlock unlock``, the passphrase, so a restarted host serves exactly as the old one."""

from __future__ import annotations

import contextlib

from airlock.common.logs import get_logger
from airlock.connector_host.link import ChildHost, HostLauncher, HostLink, SocketHost
from airlock.errors import AirlockError, ConnectorError
from airlock.framework.plugins import AirlockPluginManager, host_plugin_specs
from airlock.security.audit import Auditor
from airlock.settings.config import AirlockConfig
from airlock.settings.paths import AirlockPaths

log = get_logger("airlock.daemon")
HOST_START_WAIT = 60.0
"""How long a connector host that was just started may take to answer its first request."""


def launcher_for(
    paths: AirlockPaths, pm: AirlockPluginManager, config: AirlockConfig
) -> HostLauncher:
    """A host at ``connector_host.socket`` (isolated mode), else a child process."""
    if config.connector_host.socket is not None:
        return SocketHost(config.connector_host.socket)
    return ChildHost(
        paths.connectors_dir,
        plugins=host_plugin_specs(pm),
        entry_points=pm.loads_entry_points,
        # Same user as the core here: the TOTP secret, the audit key, the config.
        hide=[paths.data_dir, paths.config_file],
    )


class HostConnection:
    def __init__(
        self,
        paths: AirlockPaths,
        pm: AirlockPluginManager,
        config: AirlockConfig,
        audit: Auditor,
        *,
        launcher: HostLauncher | None = None,
    ) -> None:
        self.config = config
        self.audit = audit
        self.passphrase: str | None = None
        """Kept after ``airlock unlock`` to unlock a restarted connector host."""
        self.link = HostLink(
            launcher or launcher_for(paths, pm, config),
            timeout=config.connector_host.timeout,
            hello=self._hello,
            on_gone=self._gone,
        )

    async def configure(self, config: AirlockConfig) -> None:
        """Tell the host the services *config* names (a ConfigError leaves it as it was)."""
        services = {
            name: {"connector": entry.connector, "settings": entry.settings}
            for name, entry in config.services.items()
        }
        self.link.timeout = config.connector_host.timeout
        # A host just started is still importing its plugins: that is not a call's time.
        await self.link.request(
            "configure", services=services, timeout=self.link.timeout, within=HOST_START_WAIT
        )
        self.config = config

    async def _hello(self, link: HostLink) -> None:
        await self.configure(self.config)
        if self.passphrase is not None:
            await link.request("unlock", passphrase=self.passphrase)

    async def unlock(self) -> None:
        """Pass the passphrase the core was just unlocked with on to the host."""
        assert self.passphrase is not None
        try:
            await self.link.request("unlock", passphrase=self.passphrase)
        except AirlockError as exc:
            raise ConnectorError(
                f"Airlock is unlocked, but the connector host did not take the passphrase: "
                f"{exc.message}",
                hint="it is sent again when the host next connects; "
                "`airlock service status` shows the host",
            ) from None

    async def warm(self) -> None:
        """Start the connector host now, so the first operation does not wait for it."""
        try:
            await self.link.request("ping", within=HOST_START_WAIT)
        except Exception as exc:  # the first operation tries again and reports it
            log.warning("connector_host_not_started", error=type(exc).__name__)

    async def _gone(self, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.audit.append("connector_host_stopped", reason=reason[:200])
