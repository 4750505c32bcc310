"""Opening an IMAP connection whose every byte passes the wire guard, and logging in.

imapclient builds its ``imaplib`` object in ``IMAPClient._create_IMAP4``, and imaplib
sends CAPABILITY from its constructor. So the guard is put into the imaplib object
before that constructor runs (the ``_Guarded*`` classes below), not patched on
afterwards: there is no moment at which the connection can write unchecked.

Connection security: ``tls`` (implicit TLS, port 993) and ``starttls`` verify the
server certificate against the system store, or against ``ca_file`` for a self-hosted
server with its own CA. ``starttls`` never falls back to plain text. ``none`` is
accepted only for loopback hosts (the settings model enforces that).
"""

from __future__ import annotations

import functools
import imaplib
import re
import ssl
from typing import Any

from imapclient import IMAPClient
from imapclient.imap4 import IMAP4WithTimeout
from imapclient.tls import IMAP4_TLS

from airlock.plugin import withhold
from airlock_mail._imap_endpoint import Endpoint, LoginRefused
from airlock_mail._imap_guard import WireGuard, WirePolicy
from airlock_mail._imap_search import imap_string, needs_literal

__all__ = ["Endpoint", "GuardedClient", "LoginRefused", "login"]


def _guarded_send(imap: imaplib.IMAP4, policy: WirePolicy) -> WireGuard:
    return WireGuard(policy, functools.partial(imaplib.IMAP4.send, imap))


class _GuardedPlain(IMAP4WithTimeout):  # type: ignore[misc]  # imapclient is untyped
    def __init__(self, host: str, port: int, timeout: float | None, policy: WirePolicy):
        self.guard = _guarded_send(self, policy)  # before super(): it sends CAPABILITY
        super().__init__(host, port, timeout)

    def send(self, data: bytes) -> None:
        self.guard.send(data)


class _GuardedTLS(IMAP4_TLS):  # type: ignore[misc]
    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        timeout: float | None,
        policy: WirePolicy,
    ):
        self.guard = _guarded_send(self, policy)
        super().__init__(host, port, ssl_context, timeout)

    def send(self, data: bytes) -> None:
        self.guard.send(data)


class GuardedClient(IMAPClient):  # type: ignore[misc]  # imapclient ships no types
    """An IMAPClient whose imaplib object writes only through a :class:`WireGuard`."""

    def __init__(self, endpoint: Endpoint, policy: WirePolicy) -> None:
        self._endpoint = endpoint
        self._policy = policy
        context = endpoint.ssl_context() if endpoint.security != "none" else None
        super().__init__(
            endpoint.host,
            endpoint.port,
            ssl=endpoint.security == "tls",
            ssl_context=context,
            timeout=endpoint.timeout,
        )
        self._imap.debug = 0  # imaplib would format every line for a logger otherwise
        if endpoint.security == "starttls":
            if not self.has_capability("STARTTLS"):
                raise ssl.SSLError(
                    "the server does not offer STARTTLS; use security: tls (port 993)"
                )
            self.starttls(context)

    def _create_IMAP4(self) -> imaplib.IMAP4:  # imapclient's hook
        timeout = self._endpoint.timeout
        if self._endpoint.security == "tls":
            return _GuardedTLS(
                self.host, self.port, self._endpoint.ssl_context(), timeout, self._policy
            )
        return _GuardedPlain(self.host, self.port, timeout, self._policy)

    @property
    def guard(self) -> WireGuard:
        guard: WireGuard = self._imap.guard
        return guard

    def raw_untagged(
        self, command: bytes, args: list[bytes], *, response: str, uid: bool = True
    ) -> list[Any]:
        """Send *command* with *args* exactly as given (8-bit ones as literals) and
        return its untagged *response* lines. Used where imapclient would send an
        argument as an atom (its search quoting leaves ``ALL`` or ``)`` bare)."""
        data: list[Any] = self._raw_command_untagged(command, args, response_name=response, uid=uid)
        return data


def login(client: GuardedClient, username: str, password: str) -> None:
    """LOGIN with both values as IMAP strings (imaplib would send the user name bare),
    the password as a literal if it is not printable ASCII."""
    imap = client._imap
    user = imap_string(username, field_name="username")
    if needs_literal(user):
        raise LoginRefused("the user name must be ASCII")
    secret = imap_string(password, field_name="password")
    args = [user]
    if needs_literal(secret):
        imap.literal = secret  # imaplib sends it as {n} + bytes after the line
    else:
        args.append(secret)
    try:
        typ, data = imap._simple_command("LOGIN", *args)
    except imaplib.IMAP4.error as exc:  # BAD, or NO on some servers' literal handling
        raise LoginRefused(_withheld(str(exc), password)) from None
    if typ != "OK":
        raise LoginRefused(_withheld(_text(data[-1] if data else b""), password))
    imap.state = "AUTH"
    client._cached_capabilities = None  # capabilities may grow after login


def _withheld(server_text: str, password: str) -> str:
    """The server's refusal without the password in it: some servers quote the rejected
    command line back, and the agent reads this text in the error. The password is
    looked for as sent (itself, or as an IMAP quoted string) and as imaplib words it: the
    ``repr`` of a BAD answer's bytes under either quote, and a BYE's bytes read as ASCII
    (each other byte a U+FFFD). Text still holding six characters of the password in a
    row (a form not foreseen, a quote cut short) is not shown, only its response code."""
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    forms = {password, quoted}
    for sent in (password, quoted):
        data = sent.encode("utf-8")
        forms |= {_bytes_repr(data, "'"), _bytes_repr(data, '"')}
        forms.add(data.decode("ascii", "replace"))
    text = str(withhold(server_text, forms, mark="[password withheld]"))
    run = min(PASSWORD_RUN, len(password))
    if any(password[i : i + run] in text for i in range(len(password) - run + 1)):
        code = _RESPONSE_CODE.match(text)
        return (code.group(0) + " " if code else "") + "(the server's text quoted the password)"
    return text


PASSWORD_RUN = 6
"""Characters of the password in a row that keep a server's text from the agent."""
_RESPONSE_CODE = re.compile(r"\s*\[[A-Z][A-Z0-9-]*\]")


_REPR_ESCAPES = {ord("\\"): "\\\\", ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"}


def _bytes_repr(data: bytes, quote: str) -> str:
    """*data* as it shows inside ``repr`` of bytes that ``repr`` puts in *quote*."""
    shown = []
    for byte in data:
        char = chr(byte)
        if byte in _REPR_ESCAPES:
            shown.append(_REPR_ESCAPES[byte])
        elif char == quote:
            shown.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            shown.append(char)
        else:
            shown.append(f"\\x{byte:02x}")
    return "".join(shown)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
