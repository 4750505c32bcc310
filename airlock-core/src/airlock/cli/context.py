"""What every command needs, loaded once and only when first asked for."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

    from airlock.framework.plugins import AirlockPluginManager
    from airlock.settings.config import AirlockConfig
    from airlock.settings.paths import AirlockPaths


class CliState:
    def __init__(self, pm: AirlockPluginManager) -> None:
        self.pm = pm

    @cached_property
    def paths(self) -> AirlockPaths:
        from airlock.settings.paths import resolve_paths

        return resolve_paths()

    @cached_property
    def config(self) -> AirlockConfig:
        import os

        from airlock.settings.config import AirlockConfig, load_config
        from airlock.settings.paths import Mode

        folder = self.paths.config_file.parent
        if self.paths.mode is Mode.ISOLATED and not os.access(folder, os.X_OK):
            # An agent's client in isolated mode: the config is the daemon's, not ours.
            return AirlockConfig.from_sources({}, os.environ)
        return load_config(self.paths.config_file)

    def service_settings(self, name: str) -> BaseModel:
        """The configured service *name*'s settings, validated by its connector (a plugin
        command such as ``airlock gcal auth SERVICE`` checks the type it expects)."""
        from airlock.framework.plugins import get_connectors
        from airlock.gateway.services import resolve_service

        return resolve_service(name, self.config, get_connectors(self.pm)).settings
