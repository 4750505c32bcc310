"""Airlock plugin hooks of airlock-gmail. Only hooks here: ``airlock --help`` imports this
module, so the connector loads only when asked for."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.plugin import hookimpl


@hookimpl
def register_connectors() -> Iterable[str]:
    return ["gmail = airlock_gmail.connector:GmailConnector"]
