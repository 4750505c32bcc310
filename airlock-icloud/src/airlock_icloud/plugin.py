"""Airlock plugin hooks of airlock-icloud. Only hooks here: ``airlock --help`` imports this
module, so the connector loads only when asked for."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.plugin import hookimpl


@hookimpl
def register_connectors() -> Iterable[str]:
    return ["icloud = airlock_icloud.connector:ICloudConnector"]
