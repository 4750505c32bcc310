"""Airlock plugin hooks of airlock-mcp-proxy. Only hooks here: ``airlock --help`` imports
this module, so the MCP client loads only when a service is used."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.plugin import hookimpl


@hookimpl
def register_connectors() -> Iterable[str]:
    return ["mcp = airlock_mcp_proxy.connector:McpProxy"]
