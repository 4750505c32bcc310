"""``python -m airlock.mcp_server``: the MCP server, under the name the original Airlock
README's MCP configuration used (the same as ``airlock mcp`` and ``airlock-mcp``)."""

from __future__ import annotations

if __name__ == "__main__":
    from airlock.mcp import main

    main()
