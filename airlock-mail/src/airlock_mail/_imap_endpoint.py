"""Where an IMAP connector connects, and how a refused login is reported.

Kept apart from the client (which subclasses imapclient's) so that declaring a connector
does not import imapclient: ``airlock plugins list`` and ``--help`` stay fast.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Endpoint", "LoginRefused", "Security"]

Security = Literal["tls", "starttls", "none"]


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect; nothing secret."""

    host: str
    port: int
    security: Security
    timeout: float = 30.0
    ca_file: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


class LoginRefused(Exception):
    """The server answered LOGIN with NO; the argument is the server's text."""
