"""What went wrong talking IMAP, in Airlock's error tree and in words a person acts on.

Messages name the server, the user name and what the server said; never a password
(imaplib errors can quote a command line, so they are not passed through for LOGIN).
"""

from __future__ import annotations

import imaplib
import socket
import ssl

from airlock.plugin import AirlockError, ConnectorError

__all__ = ["DROPPED", "connect_error", "is_dropped", "server_refused"]

DROPPED: tuple[type[BaseException], ...] = (imaplib.IMAP4.abort, OSError, EOFError)
"""A connection that died under us: worth one reconnect."""


def is_dropped(exc: BaseException) -> bool:
    # A certificate that does not verify will not verify on the second try either.
    return isinstance(exc, DROPPED) and not isinstance(exc, ssl.SSLCertVerificationError)


def connect_error(exc: BaseException, *, where: str) -> AirlockError:
    """Connecting failed before or during the TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectorError(
            f"the TLS certificate of {where} could not be verified ({exc.verify_message})",
            hint="check the host name; for a server with its own CA set ca_file",
        )
    if isinstance(exc, ssl.SSLError):
        return ConnectorError(f"TLS with {where} failed: {exc}")
    if isinstance(exc, socket.gaierror):
        return ConnectorError(f"cannot resolve the host of {where}", hint="check the host setting")
    if isinstance(exc, TimeoutError):
        return ConnectorError(f"{where} did not answer in time", hint="check host and port")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectorError(
            f"{where} refused the connection", hint="check the port and security settings"
        )
    if isinstance(exc, OSError | EOFError | imaplib.IMAP4.abort):
        return ConnectorError(
            f"cannot connect to {where}: {exc}", hint="check host, port and security settings"
        )
    return ConnectorError(f"unexpected answer from {where}: {exc}")


def server_refused(exc: imaplib.IMAP4.error, *, where: str) -> ConnectorError:
    """A NO or BAD to a command other than LOGIN."""
    return ConnectorError(f"{where} refused the request: {exc}")
