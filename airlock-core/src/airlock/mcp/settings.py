"""Where the MCP server's client points and how long it waits, from the environment."""

from __future__ import annotations

import logging

from airlock.client import AirlockClient
from airlock.errors import ConfigError
from airlock.settings.config import McpConfig, load_config
from airlock.settings.paths import resolve_paths

log = logging.getLogger("airlock.mcp")


def mcp_config() -> McpConfig:
    """The ``mcp`` section of the config; the defaults when the file cannot be read.

    The daemon owns the config and refuses a bad one; the MCP server only needs a wait,
    and an agent's user may not be allowed to read the isolated-mode file.
    """
    paths = resolve_paths()
    try:
        return load_config(paths.config_file).mcp
    except ConfigError as exc:
        log.warning("using the default MCP settings: %s", exc)
        return McpConfig()


def mcp_client() -> AirlockClient:
    """The client the MCP server uses: the configured socket and approval wait."""
    return AirlockClient(resolve_paths().socket, approval_wait=float(mcp_config().approval_wait))
