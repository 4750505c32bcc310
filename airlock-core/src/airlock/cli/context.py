"""What every command needs, loaded once and only when first asked for."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

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
    def _config_data(self) -> dict[str, Any] | None:
        """The config file's sections; None for an agent's client in isolated mode, whose
        config is the daemon's, not ours (only the environment's keys apply)."""
        from airlock.settings.config_file import read_config_file
        from airlock.settings.paths import Mode

        folder = self.paths.config_file.parent
        if self.paths.mode is Mode.ISOLATED and not os.access(folder, os.X_OK):
            return None
        return read_config_file(self.paths.config_file)

    @cached_property
    def config(self) -> AirlockConfig:
        from airlock.settings.config import AirlockConfig, validated_config

        data = self._config_data
        if data is None:
            return AirlockConfig.from_sources({}, os.environ)
        return validated_config(self.paths.config_file, data, os.environ)

    @cached_property
    def has_services(self) -> bool:
        """Whether the config names a service; an invalid config is refused, as by
        :attr:`config`. A config that plainly is valid and names none is told without
        building the config's models (airlock.settings.config_plain)."""
        from airlock.settings.config_plain import valid_without_services

        if valid_without_services(self._config_data or {}, os.environ):
            return False
        return bool(self.config.services)

    def service_settings(self, name: str) -> BaseModel:
        """The configured service *name*'s settings, validated by its connector (a plugin
        command such as ``airlock gcal auth SERVICE`` checks the type it expects)."""
        from airlock.framework.plugins import get_connectors
        from airlock.gateway.services import resolve_service

        return resolve_service(name, self.config, get_connectors(self.pm)).settings
