"""Airlock plugin hooks of airlock-mcp-proxy. Only hooks here: ``airlock --help`` imports
this module, so the MCP client loads only when a service is used."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airlock.plugin import hookimpl

if TYPE_CHECKING:
    from airlock.plugin import Connector


@hookimpl
def register_connectors() -> Iterable[type[Connector]]:
    from airlock_mcp_proxy.connector import McpProxy

    return [McpProxy]
