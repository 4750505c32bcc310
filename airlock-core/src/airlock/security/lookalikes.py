"""Letters that pass for others: what a write's prompt points out in its parameters.

``bob@cоmpany.com`` with a Cyrillic ``о`` reads as the person's own domain. A word of
Latin letters with some from a script whose letters copy Latin ones (Cyrillic, Greek,
Armenian, Cherokee, Coptic, Lisu and the like; Latin drawn full-width or from the
mathematical alphabets; Latin letters of other sounds, ``ɑ`` and ``ɡ``) is mixed the
way such a spoof is and an honest word seldom is. Each such word is named with those
letters spelt out (``'bob@cоmpany.com': Cyrillic о U+043E``), and an IDN label in
punycode (``xn--80ak6aa92e.com``) with what it spells. The letters of Europe's own
alphabets (``é``, ``ß``, ``ı``, ``ł``) are Latin, and a word of one other script alone
(``Привет``, ``東京タワー``) is not mixed; nor are scripts that copy no Latin letter
(``Tシャツ``). Words are what lies between spaces and quotes; outside an address or a
dotted name, hyphens split them too (``IT-отдел`` is two words, as it is written).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

from airlock.common.text import untrusted_line

__all__ = ["LOOKALIKE_LABEL", "lookalikes"]

LOOKALIKE_LABEL = "Look-alike letters"
COPYING = frozenset(
    {
        "CYRILLIC",
        "GREEK",
        "ARMENIAN",
        "CHEROKEE",
        "COPTIC",
        "LISU",
        "TIFINAGH",
        "CANADIAN",
        "OSAGE",
        "FULLWIDTH",
        "MATHEMATICAL",
        "DOUBLE-STRUCK",
        "SCRIPT",
        "BLACK-LETTER",
        "KELVIN",
        "ANGSTROM",
        "LATIN",
    }
)
"""Scripts (the first word of a letter's Unicode name) with letters that copy Latin ones."""
ALPHABETS = frozenset(
    "\u00df\u00e6\u00f8\u0153\u00f0\u00fe\u0142\u0111\u0127\u0131\u0138\u0140\u0149"
    "\u014b\u0167\u017f\u00c6\u00d8\u0152\u00d0\u00de\u0141\u0110\u0126\u014a\u0166"
    "\u0133\u0132\u0259\u018f\u025b\u0190\u0254\u0186\u0253\u0181\u0257\u018a\u028b"
    "\u01b2\u0199\u0198\u01b4\u01b3"
)
"""Latin letters of living alphabets that are no accented ASCII letter: ``ß æ ø œ ð þ ł
đ ħ ı ĸ ŀ ŋ ŧ ſ ĳ`` (Europe's, Turkish ``ı`` among them), and ``ə ɛ ɔ ɓ ɗ ʋ ƙ ƴ``
(Azerbaijani's and West Africa's). An accented ASCII letter (``é``, ``ș``, ``ǎ``) is
a letter of its alphabet too; any other Latin letter is not (``ɑ``, ``ɡ``, ``Ɩ``,
``ƿ``, the click ``ǀ``)."""
UNITS = frozenset("\u00b5\u03bc")
"""``µ`` and ``μ``, in ``10μs`` and ``5µm``."""
BLOCKS = (
    (0x0180, 0x024F),  # Latin extended-B
    (0x0250, 0x02AF),  # IPA
    (0x0370, 0x03FF),  # Greek
    (0x0400, 0x052F),  # Cyrillic
    (0x0530, 0x058F),  # Armenian
    (0x13A0, 0x13FF),  # Cherokee
    (0x1400, 0x167F),  # Canadian syllabics
    (0x1D00, 0x1DBF),  # phonetic extensions
    (0x1F00, 0x1FFF),  # Greek extended
    (0x2100, 0x214F),  # letterlike symbols
    (0x2C60, 0x2CFF),  # Latin extended-C, Coptic
    (0x2D30, 0x2D7F),  # Tifinagh
    (0xA4D0, 0xA4FF),  # Lisu
    (0xA720, 0xA7FF),  # Latin extended-D
    (0xAB30, 0xABBF),  # Latin extended-E, Cherokee supplement
    (0xFF21, 0xFF5A),  # full-width Latin
    (0x104B0, 0x104FF),  # Osage
    (0x1D400, 0x1D7FF),  # mathematical alphanumerics
)
"""Where the letters that copy Latin ones are (each checked by its name)."""
WORD_LIMIT = 40
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_ADDRESS = re.compile(r"[@./]")
_HYPHENS = re.compile("[-\u2010-\u2015]")
MAX_NAMES = 20
"""Names in punycode decoded at most (each label is work)."""
_NAME = re.compile(r"[A-Za-z0-9.\-]+")


def lookalikes(text: str, *, limit: int = 200) -> str | None:
    """The words of *text* mixed as a look-alike spoof is (see the module), addresses and
    names with a dot first, in one line of at most *limit* characters that always says
    how many were left out; None if none."""
    found = [*_punycode(text), *((word, "") for word in _mixed(text))]
    if not found:
        return None
    found.sort(key=lambda item: _ADDRESS.search(item[0]) is None)
    shown: list[str] = []
    for at, (word, spelt) in enumerate(found):
        entry = f"{untrusted_line(word, WORD_LIMIT)!r}: {spelt or _spelt(word)}"
        rest = len(found) - at - 1
        more = f"; {rest} more" if rest else ""
        if len("; ".join([*shown, entry])) + len(more) > limit:
            break
        shown.append(entry)
    if not shown:  # one word's letters alone are over the limit: cut them
        word, spelt = found[0]
        shown.append(untrusted_line(f"{word!r}: {spelt or _spelt(word)}", limit - 12))
    left = len(found) - len(shown)
    return "; ".join(shown) + (f"; {left} more" if left else "")


def _mixed(text: str) -> list[str]:
    """The words of *text* with Latin letters and letters that copy them, each once: an
    address or a dotted name whole (``аррӏе-id.com``), other words split at hyphens
    (``IT-отдел`` is written so in Russian)."""
    if text.isascii():
        return []
    found: dict[str, None] = {}
    copy = _copy_letter()
    for word in dict.fromkeys(_words_with_copies().findall(text)):
        for part in [word] if _ADDRESS.search(word) else _HYPHENS.split(word):
            if _ASCII_LETTER.search(part) and copy.search(part):
                found[part] = None
    return list(found)


def _spelt(word: str) -> str:
    strangers = dict.fromkeys(c for c in word if _copies_latin(c))
    return ", ".join(f"{_script(c).title()} {c} U+{ord(c):04X}" for c in strangers)[:200]


def _punycode(text: str) -> list[tuple[str, str]]:
    """Names with an IDN label in punycode, and what they spell when it is not ASCII."""
    found: list[tuple[str, str]] = []
    if "xn--" not in text.lower():
        return found
    names = (w for w in _NAME.findall(text) if "xn--" in w.lower() and len(w) <= 253)
    for word in itertools.islice(dict.fromkeys(names), MAX_NAMES):
        if word.count(".") > 10:
            continue  # no domain name has that many labels
        labels = []
        for label in word.split("."):
            try:
                labels.append(label.encode("ascii").decode("idna") if label else label)
            except UnicodeError:
                labels.append(label)
        spelt = ".".join(labels)
        if not spelt.isascii():
            found.append((word, f"punycode for {untrusted_line(spelt, WORD_LIMIT)!r}"))
    return found


@functools.cache
def _copies() -> str:
    """The letters that copy Latin ones, as a regex class's ranges (a class of thousands
    of single letters is slow)."""
    codes = [c for lo, hi in BLOCKS for c in range(lo, hi + 1) if _copies_latin(chr(c))]
    runs: list[list[int]] = []
    for code in codes:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(
        re.escape(chr(lo)) + (f"-{re.escape(chr(hi))}" if hi > lo else "") for lo, hi in runs
    )


@functools.cache
def _copy_letter() -> re.Pattern[str]:
    return re.compile(f"[{_copies()}]")


@functools.cache
def _words_with_copies() -> re.Pattern[str]:
    """Words holding a letter that copies a Latin one: found by the regex engine, so
    that text without one costs no Python per word (a megabyte of words: ~10 ms). From
    a word's start only, nothing given back: linear in the text, however long a word
    without such a letter runs."""
    copies = _copies()
    return re.compile(rf"(?<![^\s\"'`])[^\s\"'`{copies}]*+[{copies}][^\s\"'`]*+")


@functools.lru_cache(maxsize=4096)
def _copies_latin(char: str) -> bool:
    """Whether *char* is a letter that can pass for a Latin one without being one of
    the alphabets' own (see the module)."""
    if char.isascii() or not char.isalpha() or char in UNITS or char in ALPHABETS:
        return False
    script = _script(char)
    base = unicodedata.normalize("NFD", char)[0]
    if script == "LATIN" and base.isascii():
        return False  # an accented ASCII letter
    return script in COPYING or 0x2100 <= ord(char) <= 0x214F  # letterlike: ℎ, ℂ, K


def _script(char: str) -> str:
    """The script a letter is drawn from, as the first word of its Unicode name."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNNAMED"
