"""Any MCP server behind Airlock."""
