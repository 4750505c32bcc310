"""What every command needs, loaded once and only when first asked for."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import BaseModel

    from airlock.framework.plugins import AirlockPluginManager
    from airlock.gateway.services import ServiceEntry
    from airlock.settings.config import AirlockConfig
    from airlock.settings.config_plain import PlainService
    from airlock.settings.paths import AirlockPaths


class CliState:
    def __init__(self, pm: AirlockPluginManager) -> None:
        self.pm = pm

    @cached_property
    def paths(self) -> AirlockPaths:
        from airlock.settings.paths import resolve_paths

        return resolve_paths()

    @cached_property
    def _ours(self) -> bool:
        """False for an agent's client in isolated mode: the config is the daemon's, not
        ours (only the environment's keys apply)."""
        from airlock.settings.paths import Mode

        folder = self.paths.config_file.parent
        return self.paths.mode is not Mode.ISOLATED or os.access(folder, os.X_OK)

    @cached_property
    def config_text(self) -> str | None:
        """The config file's text, read once; None when there is none or it is not ours."""
        from airlock.settings.config_file import read_config_text

        return read_config_text(self.paths.config_file) if self._ours else None

    @cached_property
    def _config_read(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The config file's sections (None when it is not ours) and the notices about its
        old keys, said once, here."""
        from airlock.settings.config_file import config_sections, log_notices

        if not self._ours:
            return None, []
        text = self.config_text
        if text is None:
            return {}, []
        data, notices = config_sections(self.paths.config_file, text)
        log_notices(notices)
        return data, notices

    @property
    def _config_data(self) -> dict[str, Any] | None:
        return self._config_read[0]

    @property
    def config_notices(self) -> list[str]:
        """What the file says in old keys (:mod:`airlock.settings.config_legacy`)."""
        return self._config_read[1]

    @cached_property
    def config(self) -> AirlockConfig:
        from airlock.settings.config import AirlockConfig, validated_config

        data = self._config_data
        if data is None:
            return AirlockConfig.from_sources({}, os.environ)
        return validated_config(self.paths.config_file, data, os.environ)

    @cached_property
    def plain_services(self) -> dict[str, PlainService] | None:
        """The configured services if the config plainly is valid (told without building
        its models: airlock.settings.config_plain); None when only the models can tell."""
        from airlock.settings.config_plain import plain_services

        return plain_services(self._config_data or {}, os.environ)

    @cached_property
    def services(self) -> Mapping[str, ServiceEntry]:
        """The configured services (connector and settings, not yet checked by the
        connector); an invalid config is refused, as by :attr:`config`."""
        plain = self.plain_services
        return plain if plain is not None else self.config.services

    @property
    def has_services(self) -> bool:
        """Whether the config names a service; an invalid config is refused."""
        return bool(self.services)

    def service_settings(self, name: str) -> BaseModel:
        """The configured service *name*'s settings, validated by its connector (a plugin
        command such as ``airlock gcal auth SERVICE`` checks the type it expects)."""
        from airlock.framework.plugins import get_connectors
        from airlock.gateway.services import resolve_entry

        return resolve_entry(name, self.services, get_connectors(self.pm)).settings
