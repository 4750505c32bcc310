"""Airlock plugin hooks of airlock-gcal. Only hooks here: ``airlock --help`` imports this
module, so gcsa and google-auth load only when a calendar is used."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airlock.plugin import hookimpl


@hookimpl
def register_connectors() -> Iterable[str]:
    return ["gcal = airlock_gcal.connector:GcalConnector"]


@hookimpl
def register_commands(app: Any) -> None:
    from airlock_gcal.cli import register

    register(app)
