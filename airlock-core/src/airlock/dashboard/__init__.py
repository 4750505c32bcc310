"""The web dashboard: server-rendered pages on a loopback TCP listener (docs/dashboard.md)."""
