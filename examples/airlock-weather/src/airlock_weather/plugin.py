"""The hooks Airlock calls; the connector is imported only when asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airlock.plugin import hookimpl

if TYPE_CHECKING:
    from airlock.plugin import Connector


@hookimpl
def register_connectors() -> Iterable[type[Connector]]:
    from airlock_weather._connector import Weather

    return [Weather]
