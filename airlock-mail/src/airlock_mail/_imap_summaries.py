"""One UID FETCH for a whole page of summaries, and its answers turned into the model.

A summary needs the sender, recipients, subject, date, read state, size, whether there
are attachments and a snippet of the text. Per message the fetch asks for:

- ``FLAGS`` and ``RFC822.SIZE``;
- ``BODY.PEEK[HEADER.FIELDS (...)]``: only the headers a summary shows, plus the two
  that say how the body is encoded;
- ``BODY.PEEK[TEXT]<0.N>``: the first :data:`SNIPPET_BYTES` of the body, enough for the
  first text part of nearly every message, for the snippet
  (:func:`airlock_mail.mime.body_snippet`: the body rules every backend uses);
- ``BODYSTRUCTURE``: the full MIME tree, so an attachment far past those bytes counts.

Why not ENVELOPE: imapclient lexes parenthesised data a byte at a time, and for a page
of 50 that costs more than everything else together, while header blocks arrive as
literals. Why not the ``email`` package's default policy: its header objects make a
page several times slower. Header values are decoded by :mod:`airlock_mail.decoding`,
like every backend's. ``PEEK`` leaves ``\\Seen`` alone (and the wire guard refuses
anything else on the read path).
"""

from __future__ import annotations

import email
import email.utils
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from airlock_mail._imap_ids import ImapId
from airlock_mail.decoding import HEADER_RAW_MAX, decode_header_text, one_line
from airlock_mail.mime import MAIL_POLICY, body_snippet
from airlock_mail.model import MessageSummary

__all__ = [
    "SNIPPET_BYTES",
    "has_attachment",
    "labels_of",
    "summary_items",
    "to_summary",
]

SNIPPET_BYTES = 8192
HEADER_MAX = 2000
ADDRESSES_MAX = 100
_FIELDS = b"FROM TO SUBJECT DATE CONTENT-TYPE CONTENT-TRANSFER-ENCODING"
_BASE_ITEMS = (
    b"FLAGS",
    b"RFC822.SIZE",
    b"BODYSTRUCTURE",
    b"BODY.PEEK[HEADER.FIELDS (" + _FIELDS + b")]",
    b"BODY.PEEK[TEXT]<0." + str(SNIPPET_BYTES).encode() + b">",
)
SEEN = b"\\Seen"
_SPECIALS = re.compile(r'[,;:<>@"()\[\]\\]')


def summary_items(extra: Sequence[bytes] = ()) -> list[bytes]:
    """The fetch items of a summary; *extra* adds e.g. Gmail's ``X-GM-LABELS``."""
    return [*_BASE_ITEMS, *extra]


def to_summary(found: Mapping[bytes, Any], *, message_id: ImapId, folder: str) -> MessageSummary:
    """A summary from one message's FETCH answer (keys as imapclient gives them)."""
    head = _section(found, b"BODY[HEADER.FIELDS")
    text = _section(found, b"BODY[TEXT]")
    if len(text) >= SNIPPET_BYTES:
        # Cut at the last line end: a half base64 quartet or UTF-8 sequence decodes badly.
        text = text[: text.rfind(b"\n") + 1] or text
    headers = email.message_from_bytes(head, policy=MAIL_POLICY)  # raw values, decoded below
    structure = found.get(b"BODYSTRUCTURE")
    return MessageSummary(
        id=str(message_id),
        folder=folder,
        from_=", ".join(_addresses(headers, "From")),
        to=_addresses(headers, "To"),
        subject=_header(headers, "Subject"),
        date=_date(_header(headers, "Date")),
        unread=SEEN not in found.get(b"FLAGS", ()),
        has_attachments=structure is not None and has_attachment(structure),
        size=int(found.get(b"RFC822.SIZE") or 0),
        snippet=body_snippet(head + text),
        labels=labels_of(found),
    )


def _header(headers: Message, name: str) -> str:
    value = headers.get(name)
    return decode_header_text(str(value))[:HEADER_MAX] if value is not None else ""


def _addresses(headers: Message, name: str) -> list[str]:
    """``Name <address>`` for each address, display names decoded and quoted if needed."""
    found = []
    for value in headers.get_all(name) or ():
        for display, addr in email.utils.getaddresses([str(value)[:HEADER_RAW_MAX]]):
            display = decode_header_text(display)
            if _SPECIALS.search(display):
                display = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
            addr = one_line(addr)
            if display or addr:
                found.append(f"{display} <{addr}>" if display and addr else display or addr)
    return found[:ADDRESSES_MAX]


def _date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _section(found: Mapping[bytes, Any], prefix: bytes) -> bytes:
    for key, value in found.items():
        if isinstance(key, bytes) and key.upper().startswith(prefix):
            return value if isinstance(value, bytes) else b""
    return b""


def labels_of(found: Mapping[bytes, Any]) -> list[str]:
    """Gmail's X-GM-LABELS (modified UTF-7, system labels like ``\\Inbox``) as text."""
    raw: Iterable[Any] = found.get(b"X-GM-LABELS") or ()
    from imapclient.imap_utf7 import decode as decode_utf7

    return [decode_utf7(label) if isinstance(label, bytes) else str(label) for label in raw]


# ------------------------------------------------------------------ BODYSTRUCTURE


def has_attachment(structure: Any) -> bool:
    """The rule of :mod:`airlock_mail.mime` applied to the server's MIME tree: a leaf is
    an attachment if its disposition says so, if it is named, if it is an attached
    message, or if it is not a body type (text/plain, text/html)."""
    return any(_is_attachment(part) for part in _leaves(structure, 0))


def _leaves(part: Any, depth: int) -> Iterable[Sequence[Any]]:
    if depth > 30 or not isinstance(part, (tuple, list)) or not part:
        return
    if isinstance(part[0], list):  # multipart: (children, subtype, ...)
        for child in part[0]:
            yield from _leaves(child, depth + 1)
        return
    yield part


def _lower(value: Any) -> str:
    return value.decode("ascii", "replace").lower() if isinstance(value, bytes) else ""


def _is_attachment(part: Sequence[Any]) -> bool:
    kind = f"{_lower(part[0])}/{_lower(part[1])}" if len(part) > 1 else ""
    if kind == "message/rfc822" or kind not in ("text/plain", "text/html"):
        return True
    params = _pairs(part[2] if len(part) > 2 else None)
    if "name" in params or "name*" in params:
        return True
    # Extension data follow the fields of a text part: md5 at 8, disposition at 9.
    disposition = part[9] if len(part) > 9 else None
    if isinstance(disposition, tuple) and disposition:
        if _lower(disposition[0]) == "attachment":
            return True
        dparams = _pairs(disposition[1] if len(disposition) > 1 else None)
        return "filename" in dparams or "filename*" in dparams
    return False


def _pairs(value: Any) -> dict[str, Any]:
    if not isinstance(value, tuple):
        return {}
    return {_lower(value[i]): value[i + 1] for i in range(0, len(value) - 1, 2)}
