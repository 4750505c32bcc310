"""The hooks Airlock calls; the connector is declared by reference, imported only when used."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.plugin import hookimpl


@hookimpl
def register_connectors() -> Iterable[str]:
    return ["weather = airlock_weather._connector:Weather"]
