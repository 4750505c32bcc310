"""Agent text to IMAP SEARCH arguments, with every value quoted or sent as a literal.

The agent may be prompt-injected, and IMAP is a line protocol with its own quoting, so
no text the agent wrote is ever placed on the wire as an atom: a search for ``ALL`` or
``) OR (`` or ``{5}`` must look for those characters, not become syntax. Each value
becomes either a quoted string (printable ASCII, with ``\\`` and ``"`` escaped, RFC 3501
§4.3) or, when it holds anything else, raw UTF-8 bytes that the sender transmits as a
counted literal (imapclient sends every 8-bit argument as ``{n}`` + bytes) together with
``CHARSET UTF-8``. Control characters are refused outright; no search needs them.

The keys themselves (``FROM``, ``SENTSINCE``, dates) are produced here from the parsed
:class:`~airlock_mail.query.Query`, never copied from the agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from airlock.plugin import InvalidInput
from airlock_mail.model import MessageSummary
from airlock_mail.query import (
    AgeTerm,
    AttachmentTerm,
    DateTerm,
    FieldTerm,
    Query,
    ReadTerm,
    Term,
    TextTerm,
    matches,
)

__all__ = ["SearchCriteria", "imap_string", "list_criteria", "query_criteria"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_SLACK = timedelta(days=1)
_RECHECKED = (AttachmentTerm, DateTerm, AgeTerm)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imap_string(value: str, *, field_name: str = "query") -> bytes:
    """*value* as an IMAP string argument: quoted if printable ASCII, else UTF-8 bytes
    for a literal. Never an atom, so never syntax."""
    if _CONTROL.search(value):
        raise InvalidInput(f"{field_name} must not contain control characters", field=field_name)
    if _PRINTABLE_ASCII.fullmatch(value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'.encode("ascii")
    return value.encode("utf-8")


def needs_literal(arg: bytes) -> bool:
    return any(b > 0x7F for b in arg)


def imap_date(day: date) -> bytes:
    """RFC 3501 date: ``1-Feb-2025`` (month names are fixed English, not the locale's)."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year:04d}".encode("ascii")


@dataclass
class SearchCriteria:
    """Arguments for ``UID SEARCH``, and the terms the server can only narrow down,
    which the caller checks exactly on each summary (:attr:`recheck`): IMAP cannot
    search for attachments, and compares dates by day in each sender's time zone."""

    args: list[bytes] = field(default_factory=list)
    recheck: tuple[Term, ...] = ()
    utf8: bool = False
    """Always say ``CHARSET UTF-8`` (Gmail's form), not only when a literal needs it."""

    def keeps(self, summary: MessageSummary, now: datetime) -> bool:
        return not self.recheck or matches(Query(self.recheck), summary, now)

    @property
    def charset(self) -> bytes | None:
        return b"UTF-8" if self.utf8 or any(needs_literal(a) for a in self.args) else None

    def command_args(self) -> list[bytes]:
        """Everything after ``UID SEARCH``."""
        head = [b"CHARSET", self.charset] if self.charset else []
        return head + (self.args or [b"ALL"])


def list_criteria(*, unread_only: bool, since: date | None) -> SearchCriteria:
    criteria = SearchCriteria()
    if unread_only:
        criteria.args.append(b"UNSEEN")
    if since is not None:
        criteria.args += [b"SENTSINCE", imap_date(since - _SLACK)]
        criteria.recheck = (DateTerm("after", since),)
    return criteria


def query_criteria(query: Query, *, now: datetime) -> SearchCriteria:
    """The shared query syntax as IMAP SEARCH keys (all terms must match: IMAP ANDs
    consecutive keys). Dates compare the Date header by day, as SENTSINCE does."""
    criteria = SearchCriteria()
    for term in query.terms:
        criteria.args += _term(term, now)
    criteria.recheck = tuple(t for t in query.terms if isinstance(t, _RECHECKED))
    return criteria


def _term(term: Term, now: datetime) -> list[bytes]:
    if isinstance(term, FieldTerm):
        value = imap_string(term.value)
        if term.field == "to":  # as Gmail does: to: also finds Cc
            return [b"OR", b"TO", value, b"CC", value]
        return [term.field.upper().encode("ascii"), value]
    if isinstance(term, TextTerm):
        return [b"TEXT", imap_string(term.text)]
    if isinstance(term, ReadTerm):
        return [b"UNSEEN" if term.unread else b"SEEN"]
    if isinstance(term, AttachmentTerm):
        # A narrowing guess the server can evaluate; the BODYSTRUCTURE check decides.
        return [
            b"NOT", b"HEADER", b"Content-Type", b'"text/"',
            b"NOT", b"HEADER", b"Content-Type", b'"multipart/alternative"',
        ]  # fmt: skip
    if isinstance(term, DateTerm):
        return _day_bound(term.bound == "after", term.day)
    return _day_bound(term.bound == "newer", term.cutoff(now).date())


def _day_bound(since: bool, day: date) -> list[bytes]:
    """A day wider than asked: SENTSINCE/SENTBEFORE read the Date header's own time
    zone, up to a day off UTC; the exact check happens on the summaries."""
    if since:
        return [b"SENTSINCE", imap_date(max(day - _SLACK, date.min))]
    return [b"SENTBEFORE", imap_date(min(day + _SLACK, date.max))]
