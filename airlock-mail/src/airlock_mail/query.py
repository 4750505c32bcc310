"""The mail search syntax shared by every backend (see docs/mail.md), parsed once into terms.

::

    from:alice  to:bob  subject:invoice  subject:"quarterly report"
    is:unread  is:read  has:attachment
    newer_than:7d  older_than:1y        (units: h, d, w, m = 30 days, y = 365 days)
    after:2025-01-31  before:2025/02/28 (UTC days; after is inclusive, before exclusive)
    "an exact phrase"  words            (free text: subject, addresses and body)

All terms must match (AND). Operators are case-insensitive; values match
case-insensitively as substrings. A ``"`` starts a quoted part that runs to the next
``"`` (no escapes), so a value may hold spaces: ``from:"Alice Smith"``.

Why parse here and not in each backend: the agent's text is untrusted. Parsing once
gives every backend the same typed terms, so no backend splices agent text into a
protocol command, and a typo (``form:alice``) is a clear error instead of silently
matching nothing. Local backends evaluate terms with :func:`matches`; IMAP translates
them to SEARCH keys; Gmail may pass :attr:`Query.source` to X-GM-RAW after validation.

Relative terms (``newer_than``) need the current time; it is always passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, TypeAlias

from airlock.plugin import InvalidInput
from airlock_mail.model import QUERY_MAX_LENGTH, Message, MessageSummary

__all__ = [
    "OPERATORS",
    "AgeTerm",
    "AttachmentTerm",
    "DateTerm",
    "FieldTerm",
    "Query",
    "ReadTerm",
    "Term",
    "TextTerm",
    "day_start",
    "matches",
    "parse_query",
]

HeaderField: TypeAlias = Literal["from", "to", "subject"]
AgeUnit: TypeAlias = Literal["h", "d", "w", "m", "y"]

_UNIT_HOURS: dict[str, int] = {"h": 1, "d": 24, "w": 24 * 7, "m": 24 * 30, "y": 24 * 365}
_UNITS: dict[str, AgeUnit] = {"h": "h", "d": "d", "w": "w", "m": "m", "y": "y"}
_FIELDS: dict[str, HeaderField] = {"from": "from", "to": "to", "subject": "subject"}


@dataclass(frozen=True)
class FieldTerm:
    """``from:`` / ``to:`` / ``subject:``: *value* occurs in that header (``to:`` also
    searches Cc, as Gmail does)."""

    field: HeaderField
    value: str


@dataclass(frozen=True)
class TextTerm:
    """A free word or ``"quoted phrase"``: occurs in the subject, addresses or text."""

    text: str


@dataclass(frozen=True)
class ReadTerm:
    """``is:unread`` (unread=True) or ``is:read`` (unread=False)."""

    unread: bool


@dataclass(frozen=True)
class AttachmentTerm:
    """``has:attachment``."""


@dataclass(frozen=True)
class DateTerm:
    """``after:DAY`` (dated on or after the start of DAY, UTC) or ``before:DAY`` (dated
    before the start of DAY). The same bounds as IMAP SINCE and BEFORE."""

    bound: Literal["after", "before"]
    day: date


@dataclass(frozen=True)
class AgeTerm:
    """``newer_than:7d`` / ``older_than:2w``: relative to a *now* given at evaluation."""

    bound: Literal["newer", "older"]
    amount: int
    unit: AgeUnit

    @property
    def delta(self) -> timedelta:
        return timedelta(hours=self.amount * _UNIT_HOURS[self.unit])

    def cutoff(self, now: datetime) -> datetime:
        """The moment *amount units* before *now* (clamped at year 1 for huge ages)."""
        try:
            return now - self.delta
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC)


Term: TypeAlias = FieldTerm | TextTerm | ReadTerm | AttachmentTerm | DateTerm | AgeTerm


@dataclass(frozen=True)
class Query:
    """A parsed search: every term must match. ``str(query)`` gives the canonical text,
    which parses back to an equal query."""

    terms: tuple[Term, ...]
    source: str = field(default="", compare=False)
    """The text the agent sent (already validated), for backends with a native syntax."""

    @property
    def needs_body(self) -> bool:
        """Free text searches the message text, which summaries do not fully carry."""
        return any(isinstance(t, TextTerm) for t in self.terms)

    def __str__(self) -> str:
        return " ".join(_render(t) for t in self.terms)


OPERATORS: tuple[str, ...] = (
    "from:",
    "to:",
    "subject:",
    "is:unread",
    "is:read",
    "has:attachment",
    "newer_than:",
    "older_than:",
    "after:",
    "before:",
)

_OPERATOR = re.compile(r"^([A-Za-z_]+):")
_AGE = re.compile(r"^(\d{1,5})([hdwmy])$", re.IGNORECASE)
_DAY = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SUPPORTED = ", ".join(OPERATORS)


def parse_query(text: str) -> Query:
    """Parse *text*; raise :class:`InvalidInput` (and nothing else) when it is not valid."""
    if len(text) > QUERY_MAX_LENGTH:
        raise InvalidInput(
            f"query is too long ({len(text)} characters, at most {QUERY_MAX_LENGTH})",
            field="query",
        )
    if _CONTROL.search(text):
        raise InvalidInput("query must not contain control characters", field="query")
    terms = tuple(_term(raw, value) for raw, value in _tokens(text))
    return Query(terms=tuple(t for t in terms if t is not None), source=text)


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    """Yield (token as written, token with quotes removed); quotes may hold spaces."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        value: list[str] = []
        while i < n and not text[i].isspace():
            if text[i] == '"':
                end = text.find('"', i + 1)
                if end < 0:
                    raise InvalidInput(
                        f"unbalanced quote at position {i + 1} of the query: "
                        'close it with another "',
                        field="query",
                    )
                value.append(text[i + 1 : end])
                i = end + 1
            else:
                value.append(text[i])
                i += 1
        yield text[start:i], "".join(value)


def _term(raw: str, value: str) -> Term | None:
    match = _OPERATOR.match(raw)
    if match is None:
        if raw == "OR":
            raise InvalidInput(
                "OR is not supported: all terms must match; run one search per alternative",
                field="query",
            )
        return TextTerm(value) if value.strip() and raw != "AND" else None
    op = match.group(1).lower()
    arg = value[len(match.group(0)) :]
    if not arg.strip():
        raise InvalidInput(f"{op}: needs a value, e.g. {_example(op)}", field="query")
    if op in _FIELDS:
        return FieldTerm(_FIELDS[op], arg)
    if op == "is":
        return _is_term(arg)
    if op == "has":
        if arg.lower() in ("attachment", "attachments"):
            return AttachmentTerm()
        raise InvalidInput(f"has:{arg} is not supported; use has:attachment", field="query")
    if op in ("newer_than", "older_than"):
        return _age_term(op, arg)
    if op == "after":
        return DateTerm("after", _parse_day(op, arg))
    if op == "before":
        return DateTerm("before", _parse_day(op, arg))
    raise InvalidInput(
        f"unknown search operator {op + ':'!r}; supported: {_SUPPORTED}. "
        'To search for the text itself, put it in quotes: "' + raw.replace('"', "") + '"',
        field="query",
    )


def _is_term(arg: str) -> ReadTerm:
    kind = arg.lower()
    if kind in ("unread", "unseen"):
        return ReadTerm(unread=True)
    if kind in ("read", "seen"):
        return ReadTerm(unread=False)
    raise InvalidInput(f"is:{arg} is not supported; use is:unread or is:read", field="query")


def _age_term(op: str, arg: str) -> AgeTerm:
    match = _AGE.match(arg)
    if match is None:
        raise InvalidInput(
            f"{op}:{arg} is not a valid age; use a number and a unit h, d, w, m or y, e.g. {op}:7d",
            field="query",
        )
    unit = _UNITS[match.group(2).lower()]
    return AgeTerm("newer" if op == "newer_than" else "older", int(match.group(1)), unit)


def _parse_day(op: str, arg: str) -> date:
    match = _DAY.match(arg)
    try:
        if match is None:
            raise ValueError(arg)
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise InvalidInput(
            f"{op}:{arg} is not a valid date; use YYYY-MM-DD, e.g. {op}:2025-01-31",
            field="query",
        ) from None


def _example(op: str) -> str:
    return {
        "is": "is:unread",
        "has": "has:attachment",
        "newer_than": "newer_than:7d",
        "older_than": "older_than:30d",
        "after": "after:2025-01-31",
        "before": "before:2025-01-31",
    }.get(op, f'{op}:"some text"')


def _quoted(value: str) -> str:
    if not value or any(c.isspace() for c in value) or ":" in value or value in ("OR", "AND"):
        return f'"{value}"'
    return value


def _render(term: Term) -> str:
    if isinstance(term, FieldTerm):
        return f"{term.field}:{_quoted(term.value)}"
    if isinstance(term, TextTerm):
        return _quoted(term.text)
    if isinstance(term, ReadTerm):
        return "is:unread" if term.unread else "is:read"
    if isinstance(term, AttachmentTerm):
        return "has:attachment"
    if isinstance(term, DateTerm):
        return f"{term.bound}:{term.day.isoformat()}"
    return f"{term.bound}_than:{term.amount}{term.unit}"


# ---------------------------------------------------------------------------- evaluation


def day_start(day: date) -> datetime:
    """The first moment of *day* in UTC: the boundary of after:, before: and ``since``."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def matches(query: Query, message: MessageSummary, now: datetime) -> bool:
    """Whether *message* satisfies every term of *query* (for backends that search locally).

    Free text looks at the full text when *message* is a :class:`Message`, otherwise at
    the snippet. A message without a date never matches a date term.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return all(_term_matches(term, message, now) for term in query.terms)


def _contains(haystack: str, needle: str) -> bool:
    return needle.casefold() in haystack.casefold()


def _recipients(message: MessageSummary) -> list[str]:
    return message.to + message.cc


def _term_matches(term: Term, message: MessageSummary, now: datetime) -> bool:
    if isinstance(term, FieldTerm):
        if term.field == "from":
            return _contains(message.from_, term.value)
        if term.field == "to":
            return any(_contains(r, term.value) for r in _recipients(message))
        return _contains(message.subject, term.value)
    if isinstance(term, TextTerm):
        body = message.text if isinstance(message, Message) else message.snippet
        places = [message.subject, message.from_, *_recipients(message), body]
        return any(_contains(p, term.text) for p in places)
    if isinstance(term, ReadTerm):
        return message.unread is term.unread
    if isinstance(term, AttachmentTerm):
        return message.has_attachments
    if message.date is None:
        return False
    if isinstance(term, DateTerm):
        after = message.date >= day_start(term.day)
        return after if term.bound == "after" else not after
    newer = message.date >= term.cutoff(now)
    return newer if term.bound == "newer" else not newer
