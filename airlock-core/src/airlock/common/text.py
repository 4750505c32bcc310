"""Text from outside made safe to show a person, with nothing heavy imported: the CLI's
listings and error lines use it on every command."""

from __future__ import annotations

import unicodedata

MAX_MARKS = 3
"""Combining marks kept on one character: enough for the scripts that stack them
(Vietnamese needs two), too few to draw a column over the lines around ("Zalgo" text)."""


def untrusted_line(text: str, limit: int) -> str:
    """Agent-controlled text made safe to show a person: one line, at most *limit* chars.

    Control characters (terminal escapes, ``\\r``, C1 codes), format characters (bidi
    overrides, zero-width), line separators and unassigned code points become spaces;
    runs of whitespace collapse to one; a character keeps at most :data:`MAX_MARKS`
    combining marks. The one sanitiser for prompts, CLI listings and notifiers.
    """
    cleaned = []
    marks = 0
    for char in text:
        category = unicodedata.category(char)
        if category in ("Mn", "Me"):
            marks += 1
            if marks > MAX_MARKS:
                continue
        else:
            marks = 0
        if category in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"):
            cleaned.append(" ")
        else:
            cleaned.append(char)
    line = " ".join("".join(cleaned).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
