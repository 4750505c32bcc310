"""Airlock: a gateway between AI agents and a person's own accounts.

The agent asks, the person approves with a TOTP code, Airlock opens a short-lived,
scoped session and writes every access to a tamper-evident audit log.
"""

from airlock._version import __version__

__all__ = ["__version__"]
