"""``airlock mcp`` / ``airlock-mcp``: the MCP server agents such as Claude Code run.

It speaks MCP on stdio and reaches the daemon as a client; it holds the session tokens
in memory, and the model never sees them. The MCP SDK is imported only when the server
starts, so importing this package (as the CLI does) stays cheap.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``airlock-mcp`` script and ``airlock mcp``."""
    from airlock.cli._lean import without_pydantic_plugins

    without_pydantic_plugins()
    import anyio

    from airlock.cli.output import report_error
    from airlock.errors import AirlockError
    from airlock.mcp.server import serve_stdio
    from airlock.mcp.settings import mcp_client

    try:
        anyio.run(serve_stdio, mcp_client())
    except AirlockError as exc:
        report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
