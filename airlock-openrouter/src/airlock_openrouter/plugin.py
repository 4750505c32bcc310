"""Airlock plugin hooks of airlock-openrouter. Only hooks here: ``airlock --help`` imports
this module, so the connector loads only when asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airlock.plugin import hookimpl

if TYPE_CHECKING:
    from airlock.plugin import Connector


@hookimpl
def register_connectors() -> Iterable[type[Connector]]:
    from airlock_openrouter.connector import OpenRouterConnector

    return [OpenRouterConnector]
