"""Bytes and header values to clean text, whatever the sender declared.

Mail declares charsets that do not exist (``unknown-8bit``, ``bogus``), that lie
(``us-ascii`` over UTF-8 bytes), or that are not text encodings at all (``base64``);
headers carry raw 8-bit bytes that RFC 5322 forbids and encoded words that do not
decode. Every function here returns the best text it can and never raises: an agent
would rather read "Gr��e" than nothing, and a crash on one message must not hide the
rest of a folder. Output is also safe to put in JSON: no lone surrogates, no control
characters except newline and tab.
"""

from __future__ import annotations

import re
from email.header import decode_header

__all__ = ["HEADER_RAW_MAX", "clean_text", "decode_bytes", "decode_header_text", "one_line"]

# The raw header text decoded at most: shown values are cut at 2,000 characters, and
# the stdlib's decode_header is quadratic in the number of encoded words (a 2.8 MB
# Subject of them took 78 s). 32 KiB is many times what 2,000 decoded characters take.
HEADER_RAW_MAX = 32 * 1024
_FALLBACK = "cp1252"  # a superset of latin-1 in practice; what "8-bit garbage" usually is
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Newlines normalised; control characters and lone surrogates removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(lambda m: "" if m.group() < "\ud800" else "\ufffd", text)


def one_line(text: str) -> str:
    """A header value as one line: every run of whitespace (CR, LF too) is one space."""
    return _WHITESPACE.sub(" ", clean_text(text)).strip()


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode *data* as *charset*; if that is unknown or wrong, as UTF-8, then cp1252."""
    for candidate in (_usable(charset), "utf-8"):
        if candidate is None:
            continue
        try:
            return clean_text(data.decode(candidate))
        except (LookupError, UnicodeError, ValueError):
            continue
    return clean_text(data.decode(_FALLBACK, errors="replace"))


def _usable(charset: str | None) -> str | None:
    """*charset* unless it is missing or a Python codec no mail client would mean."""
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    if not name or "escape" in name or name in ("idna", "punycode", "undefined"):
        return None
    return name


def decode_header_text(raw: str) -> str:
    """Decode a raw header value: RFC 2047 encoded words, and raw 8-bit bytes (which
    the email parser hands over as surrogate escapes) as UTF-8 or cp1252. Only the first
    :data:`HEADER_RAW_MAX` characters are read."""
    raw = _undo_surrogate_escapes(raw[:HEADER_RAW_MAX])
    try:
        parts = decode_header(raw)
    except Exception:  # malformed encoded words: show them as written
        return one_line(raw)
    # decode_header keeps the whitespace of plain chunks and, as RFC 2047 says, drops
    # the whitespace between adjacent encoded words; so the pieces join with nothing.
    return one_line("".join(_decode_chunk(chunk, charset) for chunk, charset in parts))


def _decode_chunk(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    if charset is None:  # plain text, which decode_header encoded as raw-unicode-escape
        try:
            return chunk.decode("raw-unicode-escape")
        except UnicodeError:
            return chunk.decode("latin-1")
    return decode_bytes(chunk, charset)


def _undo_surrogate_escapes(raw: str) -> str:
    if not any("\udc80" <= c <= "\udcff" for c in raw):
        return raw
    return decode_bytes(raw.encode("utf-8", errors="surrogateescape"), "utf-8")
