"""Letters that pass for others: what a write's prompt points out in its parameters.

``bob@cоmpany.com`` with a Cyrillic ``о`` reads as the person's own domain. A word whose
letters come from two scripts whose letters copy each other (Latin, Cyrillic, Greek,
Armenian, Cherokee) is mixed the way such a spoof is and an honest word seldom is;
so is a word of Latin letters with some drawn full-width or from the mathematical
alphabets. Each such word is named with its stranger letters spelt out
(``"bob@cоmpany.com": Cyrillic о U+043E``). Words are what lies between spaces and
quotes. Other scripts mixed among themselves (Japanese writes kanji and kana in one
word) and a wholly Cyrillic or Greek word are not marked.
"""

from __future__ import annotations

import re
import unicodedata

from airlock.common.text import untrusted_line

__all__ = ["LOOKALIKE_LABEL", "lookalikes"]

LOOKALIKE_LABEL = "Look-alike letters"
COPYING_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE"})
"""Scripts whose letters copy each other's shapes (``а``/``a``, ``ο``/``o``, ``Α``/``A``,
Armenian ``օ``/``o``, Cherokee ``Ꭺ``/``A``)."""
MAX_WORDS = 3
"""Words named at most; more are counted."""
WORD_LIMIT = 40
_WORDS = re.compile(r"[^\s\"'`]+")


def lookalikes(text: str, *, limit: int = 200) -> str | None:
    """The words of *text* mixed as a look-alike spoof is (see the module), with the
    letters of the other script spelt out, in one line of at most *limit*; None if none."""
    found: list[str] = []
    count = 0
    for word in dict.fromkeys(_WORDS.findall(text)):
        strangers = _strangers(word)
        if not strangers:
            continue
        count += 1
        if len(found) < MAX_WORDS:
            spelt = ", ".join(f"{script} {char} U+{ord(char):04X}" for char, script in strangers)
            found.append(f"{untrusted_line(word, WORD_LIMIT)!r}: {spelt}")
    if not found:
        return None
    more = f"; {count - len(found)} more" if count > len(found) else ""
    return untrusted_line("; ".join(found) + more, limit)


def _strangers(word: str) -> list[tuple[str, str]]:
    """The letters of *word* that make it mixed, each once with its script's name (the
    minority script's, or every non-Latin one); none if it is not."""
    scripts: dict[str, list[str]] = {}
    for char in word:
        if char.isalpha():
            scripts.setdefault(_script(char), []).append(char)
    copying = COPYING_SCRIPTS & scripts.keys()
    drawn = {"FULLWIDTH", "MATHEMATICAL"} & scripts.keys()
    mixed = (len(copying) >= 2) or (bool(drawn) and len(scripts) >= 2)
    if not mixed or not (copying or drawn):
        return []
    # The person reads such a word as Latin: every other letter is spelt out.
    main = "LATIN" if "LATIN" in scripts else max(scripts, key=lambda s: len(scripts[s]))
    return [
        (char, script.title())
        for script, chars in scripts.items()
        if script != main
        for char in dict.fromkeys(chars)
    ][:6]


def _script(char: str) -> str:
    """The script a letter is drawn from, as the first word of its Unicode name
    (``LATIN``, ``CYRILLIC``, ``GREEK``; ``FULLWIDTH`` and ``MATHEMATICAL`` for the
    copies of Latin letters drawn apart)."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNNAMED"
