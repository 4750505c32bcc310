"""Text from outside made safe to show a person, with nothing heavy imported: the CLI's
listings and error lines use it on every command."""

from __future__ import annotations

import unicodedata


def untrusted_line(text: str, limit: int) -> str:
    """Agent-controlled text made safe to show a person: one line, at most *limit* chars.

    Control characters (terminal escapes, ``\\r``, C1 codes), format characters (bidi
    overrides, zero-width), line separators and unassigned code points become spaces;
    runs of whitespace collapse to one. The one sanitiser for prompts, CLI listings and
    notifiers.
    """
    cleaned = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"):
            cleaned.append(" ")
        else:
            cleaned.append(char)
    line = " ".join("".join(cleaned).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
