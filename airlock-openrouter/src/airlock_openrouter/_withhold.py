"""The API key kept out of what the service sends back.

A service, or a proxy on the way, may quote the request's ``Authorization`` header back:
in an error's message, in an answer, in a streamed event. The raw bytes are searched for
the key. JSON can also spell any of its characters as an escape: ``\\/`` (PHP's encoder
escapes every ``/``), ``\\u002b``, ``\\u0073k-or-...``; only reading the JSON shows the key
then, so an answer holding a backslash is read and the key withheld from it
(``airlock.plugin.withhold``). The key goes only to the service the person configured
(``api_base``).
"""

from __future__ import annotations

from typing import Any

from airlock.plugin import withhold

__all__ = ["WITHHELD", "KeyWithholder"]

WITHHELD = "[key withheld]"


class KeyWithholder:
    """Withholds one key from bytes, text and read JSON."""

    def __init__(self, key: str) -> None:
        self._key = key
        self._raw = key.encode()
        self._raw_withheld = WITHHELD.encode()

    def from_bytes(self, content: bytes) -> bytes:
        if self._raw in content:
            return content.replace(self._raw, self._raw_withheld)
        return content

    def from_text(self, text: str) -> str:
        if self._key in text:
            return text.replace(self._key, WITHHELD)
        return text

    @staticmethod
    def may_spell_it(content: bytes) -> bool:
        """Whether JSON *content* (raw key already withheld) may still spell the key: only
        with an escape, which starts with a backslash."""
        return b"\\" in content

    def from_json(self, value: Any) -> Any:
        """*value*, as ``json.loads`` made it, with the key withheld from each string in
        it, names of members too."""
        return withhold(value, (self._key,), mark=WITHHELD)
