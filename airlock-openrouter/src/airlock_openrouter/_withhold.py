"""The API key kept out of what the service sends back.

A service, or a proxy on the way, may quote the request's ``Authorization`` header back:
in an error's message, in an answer, in a streamed event. The key is looked for in the
text, read strictly as UTF-8 (``json.loads`` of bytes also reads UTF-16 and UTF-32, in
which a search of the UTF-8 key finds nothing). JSON can also spell any character as an
escape: ``\\/`` (PHP's encoder escapes every ``/``), ``\\u002b``, ``\\u0073k-or-...``; only
reading the JSON shows the key then, so JSON holding an escape that could spell part of
the key is read and the key withheld from every string and member name in it
(``airlock.plugin.withhold``). Text that is not JSON is shown only when nothing in it can
hide the key: no escape, no control character, and no start of the key at the end of a
body cut short. The key goes only to the service the person configured (``api_base``).
"""

from __future__ import annotations

import json
from typing import Any

from airlock.plugin import withhold

__all__ = ["WITHHELD", "KeyWithholder"]

WITHHELD = "[key withheld]"
KEY_RUN = 12
"""Characters of the key in a row that are withheld as the key is: an echo cut short
(a gateway quoting the request up to so many characters, which the agent moves by
padding its own input) showed all of it but the end."""
_SHORT_ESCAPED = '"\\/\b\f\n\r\t'
"""What JSON may spell with a backslash and one letter."""


class KeyWithholder:
    """Withholds one key from what the service sent: text, read JSON, a body cut short."""

    def __init__(self, key: str) -> None:
        self._key = key
        self._short_escapable = any(c in _SHORT_ESCAPED or ord(c) < 0x20 for c in key)

    def from_text(self, text: str) -> str:
        """*text* without the key, nor any run of ``KEY_RUN`` of its characters."""
        return str(withhold(text, (self._key,), mark=WITHHELD, least=KEY_RUN))

    def read_json(self, content: bytes) -> Any:
        """*content*'s JSON, the key withheld however it is spelled; ``ValueError`` if it
        is not JSON in UTF-8 (or nests deeper than the reader goes)."""
        try:
            text = self.from_text(content.decode("utf-8"))
            data = json.loads(text)
        except (UnicodeDecodeError, RecursionError):
            raise ValueError("not JSON in UTF-8") from None
        if self.may_spell_it(text):
            data = withhold(data, (self._key,), mark=WITHHELD, least=KEY_RUN)
        return data

    def may_spell_it(self, text: str) -> bool:
        """Whether JSON *text* (the key as such already withheld) holds an escape that
        could spell part of the key: any ``\\u``, or any backslash if the key has a
        character with a short escape."""
        return "\\u" in text or (self._short_escapable and "\\" in text)

    def shown(self, content: bytes, *, cut: bool) -> str | None:
        """*content* as text to show, the key withheld; None where it could still hide the
        key: not UTF-8, an escape, a control character, or (*cut*: the body was cut short)
        a start of the key at its end, dropped."""
        try:
            text = self.from_text(content.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        if "\\" in text or any(ord(c) < 0x20 and not c.isspace() for c in text):
            return None
        if cut:
            for length in range(min(len(self._key) - 1, len(text)), 0, -1):
                if text.endswith(self._key[:length]):
                    return text[:-length]
        return text
