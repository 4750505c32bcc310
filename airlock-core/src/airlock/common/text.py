"""Text from outside made safe to show a person, with nothing heavy imported: the CLI's
listings and error lines use it on every command."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_MARKS = 3
"""Combining marks kept on one character: enough for the scripts that stack them
(Vietnamese needs two), too few to draw a column over the lines around ("Zalgo" text)."""

DRAWN_BLANK = frozenset("\u115f\u1160\u2800\u3164\uffa0")
"""Letters and symbols that draw nothing (the Hangul fillers, Braille's blank): spaces
here, so a run of them collapses like spaces instead of pushing text onto a line of its
own where a prompt wraps."""


def untrusted_line(text: str, limit: int) -> str:
    """Agent-controlled text made safe to show a person: one line, at most *limit* chars.

    Control characters (terminal escapes, ``\\r``, C1 codes), format characters (bidi
    overrides, zero-width), line separators, unassigned code points and what draws
    nothing (:data:`DRAWN_BLANK`) become spaces; runs of whitespace collapse to one; a
    character keeps at most :data:`MAX_MARKS` combining marks. The one sanitiser for
    prompts, CLI listings and notifiers.
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
        if category in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn") or char in DRAWN_BLANK:
            cleaned.append(" ")
        else:
            cleaned.append(char)
    line = " ".join("".join(cleaned).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""Where JSON can carry half of a UTF-16 pair on its own: an escape such as ``\\ud800``
(raw UTF-8 cannot hold one). ``json.loads`` lets it through; no UTF-8 encoder takes it."""
_LONE_HALF = re.compile("[\ud800-\udfff]")


def mend_halves(value: Any) -> Any:
    """Decoded JSON with every lone half of a UTF-16 pair (in texts and keys) replaced
    by U+FFFD, in place where it can be; without recursion, as the value may be nested
    as deep as the decoder allowed."""
    if isinstance(value, str):
        return _LONE_HALF.sub("\ufffd", value)
    stack: list[Any] = [value] if isinstance(value, dict | list) else []
    while stack:
        node = stack.pop()
        pairs = list(enumerate(node)) if isinstance(node, list) else list(node.items())
        for key, item in pairs:
            if isinstance(item, str):
                item = _LONE_HALF.sub("\ufffd", item)
            elif isinstance(item, dict | list):
                stack.append(item)
            if isinstance(key, str) and _LONE_HALF.search(key):
                del node[key]
                key = _LONE_HALF.sub("\ufffd", key)
            node[key] = item
    return value
