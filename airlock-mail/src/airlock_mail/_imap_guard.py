"""The wire guard: what an IMAP connection may send, checked on the bytes themselves.

Read-only must hold at the protocol level (see docs/plugins.md), not just in which Python methods
the connector happens to call. So every byte a connection writes passes through
:class:`WireGuard`, installed as the ``send`` of the underlying ``imaplib`` object, the
one funnel through which both imaplib and imapclient write. It follows the client side
of the protocol (command lines, ``{n}`` and ``{n+}`` literals) and, before a command's
first byte leaves, checks the command against a :class:`WirePolicy`:

- :data:`READ_ONLY`: CAPABILITY, LOGIN, STARTTLS, EXAMINE, LIST, STATUS, NOOP, LOGOUT,
  UID SEARCH, and UID FETCH of items that cannot set ``\\Seen`` (``BODY.PEEK[...]``,
  never ``BODY[...]`` or ``RFC822``). SELECT is refused: a read opens folders with
  EXAMINE, so even a bug that sends STORE would meet a read-only mailbox.
- :data:`READ_WRITE`: the above plus SELECT, UID STORE, UID COPY, UID MOVE and UID
  EXPUNGE, for the separate connection that runs one approved write operation. Plain
  EXPUNGE and CLOSE stay forbidden even there: they would remove every message anyone
  marked ``\\Deleted``, not just the one the person approved.

A refused command raises :class:`GuardViolation` and nothing of it is sent. The guard
also counts the commands it let through (the benchmark reports them). Its errors name
the command only, never the arguments: a LOGIN line carries the password.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["READ_ONLY", "READ_WRITE", "GuardViolation", "WireGuard", "WirePolicy"]


class GuardViolation(Exception):
    """A command the connection's policy does not allow; none of it was sent."""


_READ = frozenset(
    {
        "CAPABILITY", "LOGIN", "STARTTLS", "EXAMINE", "LIST", "STATUS", "NOOP", "LOGOUT",
        "UID SEARCH", "UID FETCH",
    }
)  # fmt: skip
_WRITE = frozenset({"SELECT", "UID STORE", "UID COPY", "UID MOVE", "UID EXPUNGE"})


@dataclass(frozen=True)
class WirePolicy:
    name: str
    commands: frozenset[str]


READ_ONLY = WirePolicy("read-only", _READ)
READ_WRITE = WirePolicy("read-write", _READ | _WRITE)

_LITERAL_MARK = re.compile(rb"\{(\d{1,10})(\+?)\}\r?\n\Z")
_HEAD = re.compile(rb"\A[A-Za-z0-9]{1,20} ([A-Za-z]{1,20})(?: ([A-Za-z]{1,20}))?(?=[ \r\n])")
_FETCH = re.compile(rb"\A[A-Za-z0-9]{1,20} UID FETCH [0-9:,*]{1,10000} (.+?)\r?\n\Z", re.I)
# Fetch items that never change a flag (RFC 3501 §6.4.5: BODY[...] sets \Seen, PEEK not).
_SAFE_ITEM = (
    rb"(?:BODY\.PEEK\[[A-Z0-9. ()\-]*\](?:<\d{1,10}\.\d{1,10}>)?"
    rb"|UID|FLAGS|ENVELOPE|RFC822\.SIZE|INTERNALDATE|BODYSTRUCTURE|BODY"
    rb"|X-GM-LABELS|X-GM-MSGID|X-GM-THRID|MODSEQ)"
)
_SAFE_ITEMS = re.compile(rb"\(?" + _SAFE_ITEM + rb"(?: " + _SAFE_ITEM + rb")*\)?", re.I)


class WireGuard:
    """Sits between imaplib and the socket; see the module docstring."""

    def __init__(self, policy: WirePolicy, send: Callable[[bytes], None]) -> None:
        self.policy = policy
        self.counts: Counter[str] = Counter()
        self._send = send
        self._line = bytearray()  # the part of a line not yet sent
        self._literal = 0  # bytes of a literal still to pass through unread
        self._in_command = False  # a command continues after a literal

    @property
    def commands_sent(self) -> int:
        return sum(self.counts.values())

    def send(self, data: bytes) -> None:
        """Check *data* and write what belongs to allowed commands."""
        out = bytearray()
        i = 0
        while i < len(data):
            if self._literal:
                take = min(self._literal, len(data) - i)
                out += data[i : i + take]
                self._literal -= take
                i += take
                continue
            end = data.find(b"\n", i)
            if end < 0:
                self._line += data[i:]
                break
            self._line += data[i : end + 1]
            i = end + 1
            segment = bytes(self._line)
            self._line.clear()
            self._check(segment)
            out += segment
        if out:
            self._send(bytes(out))

    def _check(self, segment: bytes) -> None:
        """*segment* is one line up to LF: a command line, or the rest of a command
        after a literal. Only command lines start new commands."""
        mark = _LITERAL_MARK.search(segment)
        if not self._in_command:
            command = self._command(segment, has_literal=mark is not None)
            self.counts[command] += 1
        if mark is None:
            self._in_command = False
        else:
            self._in_command = True
            self._literal = int(mark.group(1))

    def _command(self, segment: bytes, *, has_literal: bool) -> str:
        head = _HEAD.match(segment)
        if head is None:
            self._reset()
            raise GuardViolation(
                f"refused to send a line that is not an IMAP command "
                f"on a {self.policy.name} connection"
            )
        words = [head.group(1).decode().upper()]
        if words[0] == "UID" and head.group(2):
            words.append(head.group(2).decode().upper())
        command = " ".join(words)
        if command not in self.policy.commands:
            self._reset()
            raise GuardViolation(
                f"refused to send {command} on a {self.policy.name} IMAP connection"
            )
        if command == "UID FETCH":
            self._check_fetch(segment, has_literal=has_literal)
        return command

    def _check_fetch(self, segment: bytes, *, has_literal: bool) -> None:
        match = _FETCH.match(segment)
        if has_literal or match is None:
            self._reset()
            raise GuardViolation("refused a malformed UID FETCH")
        items = match.group(1)
        parenthesised = items.startswith(b"(") == items.endswith(b")")
        if not (parenthesised and _SAFE_ITEMS.fullmatch(items)):
            self._reset()
            raise GuardViolation(
                "refused UID FETCH of items that could mark messages read "
                "(only BODY.PEEK and metadata are allowed)"
            )

    def _reset(self) -> None:
        self._line.clear()
        self._literal = 0
        self._in_command = False
