"""Airlock plugin hooks of airlock-gcal. Only hooks here: ``airlock --help`` imports this
module, so gcsa and google-auth load only when a calendar is used."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airlock.plugin import hookimpl

if TYPE_CHECKING:
    from airlock.plugin import Connector


@hookimpl
def register_connectors() -> Iterable[type[Connector]]:
    from airlock_gcal.connector import GcalConnector

    return [GcalConnector]


@hookimpl
def register_commands(app: Any) -> None:
    from airlock_gcal.cli import register

    register(app)
