"""Raw RFC 5322 bytes to the mail model, for any message, however broken.

Every backend hands the bytes it fetched to :func:`parse_summary` (list views: headers,
attachment flag, a snippet) or :func:`parse_message` (one message: text, attachments,
a subset of headers). Neither raises: missing headers give empty fields, a bad date
gives ``None``, broken boundaries, bad base64 and unknown charsets give the best text
the stdlib ``email`` package can recover, and if even that fails the raw bytes are
shown as text. One unreadable message must not break a listing.

The structure is parsed with the stdlib's ``compat32`` policy and every header value
is decoded from its raw form by :mod:`airlock_mail.decoding`. Why not
``email.policy.default``: it parses about ten times slower (a listing parses every
message of a page, a local search every message of a folder), it raises on some
malformed headers when a value is accessed, and it turns raw 8-bit header bytes into
U+FFFD where we can usually recover them as UTF-8 or cp1252.
"""

from __future__ import annotations

import contextlib
import email
import email.utils
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message as EmailMessage
from email.parser import BytesParser
from email.policy import Compat32

from airlock_mail.decoding import HEADER_RAW_MAX, decode_bytes, decode_header_text, one_line
from airlock_mail.html_text import html_to_text
from airlock_mail.model import Attachment, Message, MessageSummary

__all__ = [
    "MAIL_POLICY",
    "SNIPPET_LENGTH",
    "SUMMARY_BYTES",
    "body_snippet",
    "header_date",
    "parse_message",
    "parse_summary",
]

SNIPPET_LENGTH = 200
HEADER_MAX_LENGTH = 2000
SUMMARY_BYTES = 256 * 1024  # a summary needs the headers and the first text part
MAX_DEPTH = 30  # MIME nesting deeper than this is an attack, not a mail
HEADER_SUBSET = (
    "Date", "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Message-ID",
    "In-Reply-To", "References", "List-Id", "List-Unsubscribe", "Auto-Submitted",
)  # fmt: skip


class _BoundedHeaders(Compat32):
    """compat32 with every header value cut at :data:`HEADER_RAW_MAX` as it is parsed:
    the stdlib splits a header's parameters by slicing the rest of it again for each
    one, so a stranger's 10 MB Content-Type cost hours (in the parser's own boundary
    lookup too); no value shown needs more."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        return name, value[:HEADER_RAW_MAX]


MAIL_POLICY = _BoundedHeaders()
"""The policy every message is parsed with (the IMAP summaries' header blocks too)."""


def parse_summary(
    raw: bytes,
    *,
    id: str,
    folder: str,
    unread: bool,
    size: int | None = None,
    labels: Iterable[str] = (),
    headers_only: bool = False,
) -> MessageSummary:
    """A list-view summary of *raw*. Only the first text part is decoded, and only the
    first :data:`SUMMARY_BYTES` are parsed: a listing must not decode every attachment
    (an attachment that starts beyond them is not seen by ``has_attachments``).

    *headers_only* skips the body (no snippet, ``has_attachments`` false): a cheap
    first pass for a local search whose terms look at headers and flags only."""
    mail = _Mail(raw[:SUMMARY_BYTES])
    return MessageSummary(
        has_attachments=not headers_only and any(True for _ in mail.attachment_parts()),
        snippet="" if headers_only else snippet(mail.text(first_only=True)),
        **mail.envelope(),
        **_listing(id, folder, unread, len(raw) if size is None else size, labels),
    )


def parse_message(
    raw: bytes,
    *,
    id: str,
    folder: str,
    unread: bool,
    max_chars: int = 20_000,
    size: int | None = None,
    labels: Iterable[str] = (),
) -> Message:
    """The whole of *raw*: text (HTML rendered, cut at *max_chars*), attachments, headers."""
    mail = _Mail(raw)
    text = mail.text(first_only=False)
    attachments = mail.attachments()
    return Message(
        **_listing(id, folder, unread, len(raw) if size is None else size, labels),
        has_attachments=bool(attachments),
        snippet=snippet(text),
        reply_to=mail.addresses("Reply-To"),
        message_id=mail.header("Message-ID"),
        headers=mail.header_subset(),
        text=text[:max_chars],
        text_truncated=len(text) > max_chars,
        attachments=attachments,
        **mail.envelope(),
    )


def _listing(
    id: str, folder: str, unread: bool, size: int, labels: Iterable[str]
) -> dict[str, object]:
    """The fields the backend knows, not the bytes: where the message is and its flags."""
    return {"id": id, "folder": folder, "unread": unread, "size": size, "labels": list(labels)}


def header_date(head: bytes) -> datetime | None:
    """The Date header of a message (or of just its header block), aware; or None."""
    return _Mail(head).date()


def snippet(text: str) -> str:
    """The first :data:`SNIPPET_LENGTH` characters of *text*, whitespace collapsed."""
    return one_line(text[: SNIPPET_LENGTH * 4])[:SNIPPET_LENGTH]


def body_snippet(raw: bytes) -> str:
    """The snippet of *raw* (MIME headers and the start of a body) alone, for backends
    that get the other fields elsewhere (IMAP: ENVELOPE, BODYSTRUCTURE). Parsed with
    the stdlib's compat32 policy: no header objects, several times faster."""
    try:
        part = next(_body_parts(email.message_from_bytes(raw, policy=MAIL_POLICY), 0), None)
        return snippet(_render(part)) if part is not None else ""
    except Exception:
        return snippet(_raw_body(raw))


@dataclass
class _Part:
    """A leaf MIME part with what the body and attachment logic need to know."""

    msg: EmailMessage
    content_type: str
    is_attachment: bool


class _Mail:
    """One parsed message and safe accessors for it; every accessor catches everything."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.msg = _load(raw)

    # ------------------------------------------------------------------ headers

    def header(self, name: str) -> str:
        return decode_header_text(_raw_value(self.msg, name))[:HEADER_MAX_LENGTH]

    def addresses(self, name: str) -> list[str]:
        """``Name <addr>`` for each address. Split before decoding: a decoded display
        name may hold the comma that separates addresses."""
        raw = _raw_value(self.msg, name)[:HEADER_RAW_MAX]  # 100 are shown at most
        if not raw:
            return []
        try:
            pairs = email.utils.getaddresses([raw])
        except Exception:
            pairs = []
        found = [_format_address(decode_header_text(n), decode_header_text(a)) for n, a in pairs]
        found = [a for a in found if a][:100]
        if found:
            return found
        text = decode_header_text(raw)[:HEADER_MAX_LENGTH]
        return [text] if text else []

    def date(self) -> datetime | None:
        value = self.header("Date")
        if not value:
            return None
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except Exception:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    def envelope(self) -> dict[str, object]:
        """The fields summaries and messages share, keyed for the model constructors."""
        senders = self.addresses("From")
        return {
            "from_": ", ".join(senders),
            "to": self.addresses("To"),
            "cc": self.addresses("Cc"),
            "subject": self.header("Subject"),
            "date": self.date(),
        }

    def header_subset(self) -> dict[str, str]:
        found = ((name, self.header(name)) for name in HEADER_SUBSET)
        return {name: value for name, value in found if value}

    # ------------------------------------------------------------------ body

    def text(self, *, first_only: bool) -> str:
        try:
            pieces: list[str] = []
            for part in _body_parts(self.msg, 0):
                piece = _render(part)
                if piece.strip():
                    pieces.append(piece.strip("\n"))
                    if first_only:
                        break
            return "\n\n".join(pieces)
        except Exception:  # a structure we could not walk: the raw bytes as text
            return _raw_body(self.raw)

    def attachment_parts(self) -> Iterator[_Part]:
        with contextlib.suppress(Exception):  # a broken structure lists what it could
            yield from (p for p in _leaves(self.msg, 0) if p.is_attachment)

    def attachments(self) -> list[Attachment]:
        found = []
        for part in self.attachment_parts():
            found.append(
                Attachment(
                    filename=_filename(part.msg),
                    content_type=part.content_type,
                    size=_decoded_size(part.msg),
                )
            )
        return found


# ---------------------------------------------------------------------- structure


def _load(raw: bytes) -> EmailMessage:
    try:
        return email.message_from_bytes(raw, policy=MAIL_POLICY)
    except Exception:  # e.g. RecursionError on absurd nesting: keep the headers at least
        try:
            return BytesParser(policy=MAIL_POLICY).parsebytes(raw, headersonly=True)
        except Exception:
            return EmailMessage()


def _raw_value(msg: EmailMessage, name: str) -> str:
    """The first *name* header as written (8-bit bytes as surrogate escapes), or ""."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _content_type(msg: EmailMessage) -> str:
    """The part's type; a multipart whose boundary never occurs is text to show as is."""
    try:
        found = one_line(msg.get_content_type()).lower()[:200]
    except Exception:
        return "text/plain"
    if found.startswith("multipart/") and not msg.is_multipart():
        return "text/plain"
    return found


def _children(msg: EmailMessage) -> list[EmailMessage]:
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, EmailMessage)] if isinstance(payload, list) else []


def _is_attachment(msg: EmailMessage, content_type: str) -> bool:
    """Attachment: said so, or named, or not a body type (an inline image is one too)."""
    try:
        disposition = (msg.get_content_disposition() or "").lower()
    except Exception:
        disposition = ""
    if disposition == "attachment" or content_type == "message/rfc822":
        return True
    if content_type not in ("text/plain", "text/html"):
        return True
    return bool(_filename(msg))


def _leaves(msg: EmailMessage, depth: int) -> Iterator[_Part]:
    """Every non-multipart part, depth first; attached messages are not opened."""
    if depth > MAX_DEPTH:
        return
    content_type = _content_type(msg)
    if msg.is_multipart() and content_type != "message/rfc822":
        for child in _children(msg):
            yield from _leaves(child, depth + 1)
        return
    yield _Part(msg, content_type, _is_attachment(msg, content_type))


def _body_parts(msg: EmailMessage, depth: int) -> Iterator[_Part]:
    """The parts a reader sees as the body: of each alternative set only the best one
    (plain text over HTML), every inline text part of a mixed set, in order."""
    if depth > MAX_DEPTH:
        return
    content_type = _content_type(msg)
    if not msg.is_multipart() or content_type == "message/rfc822":
        part = _Part(msg, content_type, _is_attachment(msg, content_type))
        if not part.is_attachment:
            yield part
        return
    children = _children(msg)
    if content_type == "multipart/alternative":
        children = _best_alternative(children)
    elif content_type == "multipart/related":
        children = children[:1]  # the root; the rest are its images
    for child in children:
        yield from _body_parts(child, depth + 1)


def _best_alternative(children: list[EmailMessage]) -> list[EmailMessage]:
    for wanted in ("text/plain", "text/html"):
        for child in children:
            if _content_type(child) == wanted and not _is_attachment(child, wanted):
                return [child]
    return [c for c in children if c.is_multipart()][:1]


def _render(part: _Part) -> str:
    payload = _payload(part.msg)
    try:
        charset = part.msg.get_content_charset()
    except Exception:
        charset = None
    text = decode_bytes(payload, charset)
    return html_to_text(text) if part.content_type == "text/html" else text


def _payload(msg: EmailMessage) -> bytes:
    try:
        data = msg.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = msg.get_payload()
    return raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else b""


def _decoded_size(msg: EmailMessage) -> int:
    if _content_type(msg) == "message/rfc822":
        try:
            return len(msg.as_bytes())
        except Exception:
            return 0
    return len(_payload(msg))


def _filename(msg: EmailMessage) -> str:
    """RFC 2231 (``filename*=``) is decoded by get_filename, RFC 2047 words here."""
    try:
        name = msg.get_filename() or ""
    except Exception:
        name = ""
    return decode_header_text(str(name))[:255]


def _format_address(name: str, address: str) -> str:
    return f"{name} <{address}>" if name and address else name or address


def _raw_body(raw: bytes) -> str:
    """Last resort: everything after the header block, as text."""
    head, sep, body = raw.partition(b"\n\n")
    return decode_bytes(body if sep else head, None).strip()
